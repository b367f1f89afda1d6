/*
 * libtrace/nvtx_nvtx.c — NVTX ranges in domain "pipetrace", through the
 * header-only NVTX3 (it finds an attached tool such as Nsight Systems by
 * dlopen, and costs a branch when there is none). Built only with NVTX.
 */
#include <nvtx3/nvToolsExt.h>
#include <pthread.h>

#include "internal.h"

static nvtxDomainHandle_t domain;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void make_domain(void)
{
	domain = nvtxDomainCreateA("pipetrace");
}

void pt_nvtx_push(const char *name)
{
	pthread_once(&once, make_domain);
	nvtxEventAttributes_t a = {0};
	a.version = NVTX_VERSION;
	a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
	a.messageType = NVTX_MESSAGE_TYPE_ASCII;
	a.message.ascii = name;
	nvtxDomainRangePushEx(domain, &a);
}

void pt_nvtx_pop(void)
{
	pthread_once(&once, make_domain);
	nvtxDomainRangePop(domain);
}
