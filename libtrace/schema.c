/*
 * libtrace/schema.c — the trace.db schema (docs/schema.md is its prose twin)
 * and the checks that tell a pipetrace trace from any other file: a missing
 * file, a file that is not SQLite, a truncated one, another program's
 * database, one from a newer pipetrace. It does not read or write events.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

const char pt_schema_sql[] =
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;\n"
	"CREATE TABLE kinds(id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
	"INSERT INTO kinds VALUES (1,'F'),(2,'B'),(3,'I'),(4,'W'),(5,'FB'),(6,'SEND'),(7,'RECV'),"
	"(8,'KERNEL'),(9,'MEMCPY'),(10,'MEMSET'),(11,'SYNC'),(12,'RUNTIME'),(13,'RANGE');\n"
	"CREATE TABLE strings(id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);\n"
	"CREATE TABLE ranks(rank INTEGER PRIMARY KEY, device INTEGER, theory_bubble_ns INTEGER,"
	" theory_peak_act INTEGER, nchunks INTEGER, label TEXT);\n"
	"CREATE TABLE streams(rank INTEGER NOT NULL, stream INTEGER NOT NULL, role INTEGER NOT NULL,"
	" name TEXT, PRIMARY KEY(rank, stream)) WITHOUT ROWID;\n"
	"CREATE TABLE chunks(rank INTEGER NOT NULL, chunk INTEGER NOT NULL, pipe INTEGER NOT NULL,"
	" stage INTEGER NOT NULL, PRIMARY KEY(rank, chunk)) WITHOUT ROWID;\n"
	"CREATE TABLE plan(rank INTEGER NOT NULL, step INTEGER NOT NULL, kind INTEGER NOT NULL,"
	" chunk INTEGER, mb INTEGER, chunk2 INTEGER, mb2 INTEGER, payload INTEGER, peer INTEGER,"
	" seq INTEGER, batch INTEGER, bytes INTEGER, phase INTEGER, tag INTEGER,"
	" PRIMARY KEY(rank, step)) WITHOUT ROWID;\n"
	/* Schema 2: ops and comms are stored in the order readers walk them,
	 * rank by rank in time (WITHOUT ROWID, keyed by (rank, start_ns, id)),
	 * so a reader's scan is sequential instead of an index probe then a
	 * table lookup per row. The writer numbers the rows. */
	"CREATE TABLE ops(id INTEGER NOT NULL, rank INTEGER NOT NULL, stream INTEGER NOT NULL,"
	" step INTEGER, kind INTEGER NOT NULL, chunk INTEGER, mb INTEGER, chunk2 INTEGER,"
	" mb2 INTEGER, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,"
	" PRIMARY KEY(rank, start_ns, id)) WITHOUT ROWID;\n"
	"CREATE TABLE comms(id INTEGER NOT NULL, rank INTEGER NOT NULL, stream INTEGER NOT NULL,"
	" step INTEGER, kind INTEGER NOT NULL, payload INTEGER, chunk INTEGER, mb INTEGER,"
	" peer INTEGER, seq INTEGER, batch INTEGER, bytes INTEGER, posted_ns INTEGER,"
	" start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,"
	" PRIMARY KEY(rank, start_ns, id)) WITHOUT ROWID;\n"
#define ACTIVITY(t, extra)                                                                                             \
	"CREATE TABLE " t "(id INTEGER PRIMARY KEY, rank INTEGER NOT NULL, stream INTEGER NOT NULL,"           \
	" device INTEGER, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, name INTEGER, corr INTEGER,"     \
	" ext INTEGER" extra ");\n"
	ACTIVITY("kernels", "")
	ACTIVITY("memcpy", ", bytes INTEGER, copy_kind INTEGER")
	ACTIVITY("memset", ", bytes INTEGER")
	ACTIVITY("sync", ", sync_type INTEGER")
	ACTIVITY("runtime", "")
	ACTIVITY("ranges", ", depth INTEGER, domain INTEGER");
#undef ACTIVITY

/* While recording, ops and comms rows are appended, in the order they come,
 * to rowid tables of the connection's temporary database (a B-tree append is
 * the cheapest insert SQLite has: inserting each row at its (rank, start_ns)
 * place cost the writer 3x); pt_unstage_sql then copies them once, sorted,
 * into the trace's tables. The staging rows pack several fields into one
 * integer (writer.c, to_row), as an insert costs per column: two 32-bit
 * fields as hi << 32 | lo (hi signed, lo its 32 bits), and for ops
 * mb << 32 | chunk << 16 | chunk2, for comms mb << 32 | chunk << 16 |
 * payload << 8 | kind (16-bit fields their 16 bits). Optional ids are staged
 * as they came and become NULL here when negative, as the writer makes them.
 * No NOT NULL here: nothing staged is NULL, and each check costs. */
const char pt_stage_sql[] =
	"PRAGMA temp.page_size=16384; PRAGMA temp.journal_mode=OFF; PRAGMA temp.cache_size=-8192;"
	"CREATE TEMP TABLE ops_rows(id INTEGER PRIMARY KEY, rank_stream INTEGER, step_mb2 INTEGER,"
	" mb_chunk_chunk2 INTEGER, kind INTEGER, start_ns INTEGER,"
	" end_ns INTEGER);\n"
	"CREATE TEMP TABLE comms_rows(id INTEGER PRIMARY KEY, rank_stream INTEGER, peer_seq INTEGER,"
	" batch_step INTEGER, mb_chunk_payload_kind INTEGER, bytes INTEGER, posted_ns INTEGER,"
	" start_ns INTEGER, end_ns INTEGER);\n";

/* The low 32 bits of x as a signed value; the same for 16 bits. Optional
 * ids: the high 32 bits, or the low 32 or 16, NULL when negative (sign bit
 * set). Plain arithmetic: a function call per column cost the close more. */
#define LO32(x) "((" x " & 4294967295) - ((" x " & 2147483648) << 1))"
#define LO16(x) "((" x " & 65535) - ((" x " & 32768) << 1))"
#define OPT_HI32(x) "CASE WHEN " x " >= 0 THEN " x " >> 32 END"
#define OPT_LO32(x) "CASE WHEN " x " & 2147483648 = 0 THEN " x " & 4294967295 END"
#define OPT_LO16(x) "CASE WHEN " x " & 32768 = 0 THEN " x " & 65535 END"

const char pt_unstage_sql[] =
	"PRAGMA threads=2;\n" /* the sort may use a second core */
	"INSERT INTO main.ops(id, rank, stream, step, kind, chunk, mb, chunk2, mb2, start_ns, end_ns)"
	" SELECT id, rank_stream >> 32, rank_stream & 4294967295, " OPT_HI32("step_mb2") ", kind, "
	LO16("(mb_chunk_chunk2 >> 16)") ", mb_chunk_chunk2 >> 32, " OPT_LO16("mb_chunk_chunk2") ", "
	OPT_LO32("step_mb2") ", start_ns, end_ns FROM temp.ops_rows"
	" ORDER BY rank_stream >> 32, start_ns, id;\n"
	"DROP TABLE temp.ops_rows;\n"
	"INSERT INTO main.comms(id, rank, stream, step, kind, payload, chunk, mb, peer, seq, batch, bytes,"
	" posted_ns, start_ns, end_ns) SELECT id, rank_stream >> 32, rank_stream & 4294967295, "
	OPT_LO32("batch_step") ", mb_chunk_payload_kind & 255, (mb_chunk_payload_kind >> 8) & 255, "
	LO16("(mb_chunk_payload_kind >> 16)") ", mb_chunk_payload_kind >> 32, peer_seq >> 32, " LO32("peer_seq")
	", batch_step >> 32, bytes, posted_ns, start_ns, end_ns FROM temp.comms_rows"
	" ORDER BY rank_stream >> 32, start_ns, id;\n"
	"DROP TABLE temp.comms_rows;\n";
#undef LO32
#undef LO16
#undef OPT_HI32
#undef OPT_LO32
#undef OPT_LO16

const char pt_index_sql[] = "CREATE INDEX kernels_rank_start ON kernels(rank, start_ns);\n"
			    "CREATE INDEX memcpy_rank_start ON memcpy(rank, start_ns);\n"
			    "CREATE INDEX memset_rank_start ON memset(rank, start_ns);\n"
			    "CREATE INDEX sync_rank_start ON sync(rank, start_ns);\n"
			    "CREATE INDEX runtime_rank_start ON runtime(rank, start_ns);\n"
			    "CREATE INDEX ranges_rank_start ON ranges(rank, start_ns);\n";

const struct pt_table pt_tables[PT_NTABLES] = {
	{"ops", PT_SRC_OPS}, {"comms", PT_SRC_COMMS},	{"kernels", PT_SRC_KERNELS}, {"memcpy", PT_SRC_MEMCPY},
	{"memset", PT_SRC_MEMSET}, {"sync", PT_SRC_SYNC}, {"runtime", PT_SRC_RUNTIME}, {"ranges", PT_SRC_RANGES},
};

int pt_table_of_kind(int kind)
{
	switch (kind) {
	case PT_OP_SEND:
	case PT_OP_RECV: return PT_TBL_COMMS;
	case PT_OP_KERNEL: return PT_TBL_KERNELS;
	case PT_OP_MEMCPY: return PT_TBL_MEMCPY;
	case PT_OP_MEMSET: return PT_TBL_MEMSET;
	case PT_OP_SYNC: return PT_TBL_SYNC;
	case PT_OP_RUNTIME: return PT_TBL_RUNTIME;
	case PT_OP_RANGE: return PT_TBL_RANGES;
	}
	return PT_TBL_OPS;
}

unsigned pt_kind_source(int kind) { return pt_tables[pt_table_of_kind(kind)].source; }

int pt_sqlite_err(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return PT_OK;
	case SQLITE_NOMEM:
		return PT_ENOMEM;
	case SQLITE_NOTADB:
		return PT_ENOTDB;
	case SQLITE_CORRUPT:
	case SQLITE_FORMAT:
		return PT_ECORRUPT;
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
		return PT_EIO;
	}
	return PT_ESQL;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int pt_schema_check_file(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		if (errno == ENOENT)
			return pt_logerr(PT_ENOENT, "%s: no such file", path);
		return pt_logerr(PT_EIO, "%s: %s", path, strerror(errno));
	}
	if (S_ISDIR(st.st_mode))
		return pt_logerr(PT_ENOTDB, "%s: is a directory, not a trace database", path);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return pt_logerr(PT_EIO, "%s: %s", path, strerror(errno));
	unsigned char h[100];
	ssize_t n = read(fd, h, sizeof h);
	close(fd);
	if (n < 0)
		return pt_logerr(PT_EIO, "%s: %s", path, strerror(errno));
	if (n == 0)
		return pt_logerr(PT_ENOTDB, "%s: empty file, not a trace database", path);
	if (n < 16 || memcmp(h, "SQLite format 3", 16) != 0)
		return pt_logerr(PT_ENOTDB, "%s: not an SQLite database (no SQLite header)", path);
	if (n < 100)
		return pt_logerr(PT_ECORRUPT, "%s: truncated SQLite database (%zd-byte header)", path, n);
	uint32_t page = (uint32_t)h[16] << 8 | h[17];
	if (page == 1)
		page = 65536;
	uint32_t pages = be32(h + 28);
	uint32_t change = be32(h + 24), valid_for = be32(h + 92);
	/* The in-header size is authoritative when written by SQLite >= 3.7.0,
	 * which stamps version-valid-for with the change counter. */
	if (pages && change == valid_for && (uint64_t)page * pages > (uint64_t)st.st_size)
		return pt_logerr(PT_ECORRUPT,
				 "%s: truncated database: %lld bytes, but its header declares %u pages of %u bytes",
				 path, (long long)st.st_size, pages, page);
	return 0;
}

int pt_table_exists(sqlite3 *db, const char *name)
{
	sqlite3_stmt *st;
	int found = 0;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE type='table' AND name=?", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		found = 1;
	else if (rc != SQLITE_DONE)
		found = -1;
	sqlite3_finalize(st);
	return found;
}

static int pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

int pt_schema_check_db(sqlite3 *db, const char *path)
{
	int64_t app = 0, ver = 0;
	int rc = pragma_int(db, "PRAGMA application_id", &app);
	if (rc == SQLITE_OK)
		rc = pragma_int(db, "PRAGMA user_version", &ver);
	if (rc != SQLITE_OK) {
		int err = pt_sqlite_err(rc);
		if (err == PT_ENOTDB)
			return pt_logerr(err, "%s: not an SQLite database (%s)", path, sqlite3_errmsg(db));
		return pt_logerr(err == PT_ESQL ? PT_ECORRUPT : err, "%s: cannot read the database: %s", path,
				 sqlite3_errmsg(db));
	}
	if (app != PT_APPLICATION_ID) {
		int has_meta = pt_table_exists(db, "meta");
		if (has_meta < 0)
			return pt_logerr(PT_ECORRUPT, "%s: cannot read the database: %s", path, sqlite3_errmsg(db));
		return pt_logerr(PT_EFOREIGN,
				 "%s: an SQLite database, but not a pipetrace trace (application_id %#llx, "
				 "expected %#x)%s",
				 path, (unsigned long long)app, PT_APPLICATION_ID,
				 pt_table_exists(db, "TARGET_INFO_SESSION_START_TIME") == 1 ||
						 pt_table_exists(db, "StringIds") == 1
					 ? "; it looks like an Nsight Systems export: use `pipetrace import`"
					 : "");
	}
	if (ver > PT_SCHEMA_VERSION)
		return pt_logerr(PT_EVERSION,
				 "%s: written with trace schema %lld, newer than this pipetrace reads (%d); "
				 "upgrade pipetrace",
				 path, (long long)ver, PT_SCHEMA_VERSION);
	if (ver < 1)
		return pt_logerr(PT_ECORRUPT, "%s: pipetrace trace without a schema version (unfinished write?)",
				 path);
	static const char *const need[] = {"meta",    "strings", "ranks",  "streams", "chunks", "plan",   "ops",
					   "comms",   "kernels", "memcpy", "memset",  "sync",   "runtime", "ranges"};
	for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
		int e = pt_table_exists(db, need[i]);
		if (e < 0)
			return pt_logerr(PT_ECORRUPT, "%s: cannot read the database: %s", path, sqlite3_errmsg(db));
		if (e == 0)
			return pt_logerr(PT_ECORRUPT, "%s: damaged trace: table '%s' is missing", path, need[i]);
	}
	return 0;
}
