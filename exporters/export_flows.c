/*
 * exporters/export_flows.c — the export driver's flow ids, and the pairing
 * of message flows whose two ends do not meet in time order. Viewers join a
 * flow's ends in time order and drop an end met before its beginning. Most
 * RECVs start at or after their SEND and end its flow as they start; one
 * that starts earlier (the ranks' clocks disagree, or a GPU transfer is timed
 * from when the receiver began to wait) ends it as it ends instead, if its
 * SEND has begun by then; one that ends before its SEND begins can have no
 * arrow, and is counted. The state holds only messages in flight.
 */
#include "export_internal.h"
#include "exporters.h"

uint64_t pt_flow_id(int type, uint64_t v)
{
	return (uint64_t)type << 62 | (v & ((1ULL << 62) - 1));
}

uint64_t pt_flow_message(int32_t from, int32_t to, int32_t seq)
{
	return pt_flow_id(PT_FLOW_MESSAGE,
			  (uint64_t)(from & 0xfffff) << 42 | (uint64_t)(to & 0xfffff) << 22 | (uint64_t)(seq & 0x3fffff));
}

uint64_t pt_flow_launch(int32_t rank, int64_t corr)
{
	return pt_flow_id(PT_FLOW_LAUNCH, (uint64_t)(rank & 0xfffff) << 42 | ((uint64_t)corr & ((1ULL << 42) - 1)));
}

int pt_msg_flows_send(struct pt_msg_flows *m, uint64_t id, int64_t start)
{
	int64_t t;
	if (pt_map_find(&m->orphans, id, &t)) {
		pt_map_del(&m->orphans, id);
		m->lost++;
		return 0;
	}
	int err = pt_map_put(&m->sent, id, start);
	return err ? err : 1;
}

int pt_msg_flows_recv(struct pt_msg_flows *m, uint64_t id)
{
	int64_t t;
	if (!pt_map_find(&m->sent, id, &t))
		return 0;
	pt_map_del(&m->sent, id);
	return 1;
}

int pt_msg_flows_late(struct pt_msg_flows *m, uint64_t id, int64_t *since)
{
	if (!pt_map_find(&m->sent, id, since)) {
		int err = pt_map_put(&m->orphans, id, 0);
		return err ? err : 0;
	}
	pt_map_del(&m->sent, id);
	return 1;
}

void pt_msg_flows_free(struct pt_msg_flows *m)
{
	pt_map_free(&m->sent);
	pt_map_free(&m->orphans);
}
