#!/bin/sh
# tests/e2e/import.sh — `pipetrace import` as a user runs it: DeepSeek's real
# PyTorch-profiler trace, checked against figures a short Python script
# computes from the JSON itself (spec/tracing.md §5: unions of compute and of
# communication kernels, their intersection); a small nsys-schema database
# built here with the sqlite3 shell against the same events as Kineto JSON;
# the overrides; and what bad input gets.
. "$(dirname "$0")/lib.sh"
P=$PIPETRACE
D="$PT_ROOT/tests/data"
DS="$D/deepseek/deepseek-profile-train.json"

expect_out '^usage: pipetrace import' "import --help" $P import --help
expect_out 'import +PyTorch-profiler' "pipetrace --help lists import" $P --help

if ! command -v python3 >/dev/null; then
	skip "the DeepSeek trace against an independent computation" "no python3"
else
	expect_out '^imported 1 file \(Kineto JSON\)' "import the DeepSeek trace" $P import "$DS" -o "$T/ds.db"
	check "it names stream 27 communication, 7 and 23 compute" \
		grep -q 'stream 7 compute .* stream 23 compute .* stream 27 communication' "$OUT"
	run $P stats --json "$T/ds.db"
	cp "$OUT" "$T/ds.json"
	run $P stats "$T/ds.db"
	cp "$OUT" "$T/ds.txt"
	# The expected figures, from the JSON alone (never from pipetrace's output).
	if python3 - "$DS" "$T/ds.json" "$T/ds.txt" "$T/ds.db" >"$T/py.out" 2>&1 <<'PY'
import json, re, sqlite3, sys
from decimal import Decimal
trace = json.load(open(sys.argv[1]))
got = json.load(open(sys.argv[2]))
text = open(sys.argv[3]).read()
ns = lambda us: int(Decimal(str(us)) * 1000)  # Kineto times are µs
X = [e for e in trace["traceEvents"] if e.get("ph") == "X"]
gpu = [e for e in X if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
kern = [e for e in X if e.get("cat") == "kernel"]
iv = lambda e: (ns(e["ts"]), ns(e["ts"]) + ns(e["dur"]))

# Which streams communicate: most of their kernel time in NCCL or DeepEP
# dispatch / combine / notify kernels (docs/import.md's rule, written again).
comm_re = re.compile(r"(^|[^a-z])nccl|(deep_ep|dpsk::ep)::(intranode|internode|internode_ll)::", re.I)
share = {}
for e in kern:
    s = e["args"]["stream"]
    c, o = share.get(s, (0, 0))
    d = iv(e)[1] - iv(e)[0]
    share[s] = (c + d, o) if comm_re.search(e["name"]) else (c, o + d)
comm_streams = {s for s, (c, o) in share.items() if c > o}
assert comm_streams == {27}, comm_streams  # what the data's README says

def union(ivs):
    out = []
    for s, e in sorted(ivs):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out

def length(u):
    return sum(e - s for s, e in u)

def inter(a, b):
    i = j = t = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        t += max(0, hi - lo)
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return t

C = union(iv(e) for e in kern if e["args"]["stream"] not in comm_streams)
M = union(iv(e) for e in gpu if e["args"]["stream"] in comm_streams)
measured = [iv(e) for e in kern] + [iv(e) for e in gpu if e["args"]["stream"] in comm_streams]
span = max(e for _, e in measured) - min(s for s, _ in measured)
want = {"makespan_ns": span, "busy_ns": length(C), "comm_ns": length(M), "overlap_ns": inter(C, M)}
want["exposed_comm_ns"] = want["comm_ns"] - want["overlap_ns"]
for k, v in want.items():
    assert got[k] == v, (k, got[k], v)
assert abs(got["overlap_ratio"] - want["overlap_ns"] / want["comm_ns"]) < 1e-9
print("span %d busy %d comm %d hidden %d (%.2f%%)" % (span, length(C), length(M), want["overlap_ns"],
      100 * want["overlap_ns"] / want["comm_ns"]))

# stats says it in words: GPU span, compute busy, communication busy, hidden share
ms = lambda v: "%.3f ms" % (v / 1e6)
line = "GPU span %s \u00b7 compute busy %s \u00b7 communication busy %s \u00b7 hidden under compute %s (%.2f%%)" % (
    ms(span), ms(want["busy_ns"]), ms(want["comm_ns"]), ms(want["overlap_ns"]),
    100 * want["overlap_ns"] / want["comm_ns"])
assert line in text, (line, text)

# Ops from annotations: NAME(F) F, NAME(W) W, NAME(B) I when NAME(W) exists, else B;
# each spans the GPU work launched inside it (runtime call by correlation id; on
# its own thread, else on any thread), on the stream with most of that work.
ann = [e for e in X if e.get("cat") == "user_annotation" and re.search(r"\([FBW]\)$", e["name"])]
names = {e["name"] for e in ann}
def kind(n):
    part, k = n[:-3], n[-2]
    return "I" if k == "B" and part + "(W)" in names else k
launch = {e["args"]["correlation"]: e for e in X if e.get("cat") in ("cuda_runtime", "cuda_driver")}
work = {a["args"]["External id"]: [] for a in ann}
for g in gpu:
    r = launch.get(g["args"].get("correlation"))
    if not r:
        continue
    t = ns(r["ts"])
    open_ = [a for a in ann if ns(a["ts"]) <= t < ns(a["ts"]) + ns(a["dur"])]
    mine = [a for a in open_ if a["tid"] == r["tid"]]
    for a in mine or open_:
        work[a["args"]["External id"]].append(g)
expect = []
for a in ann:
    w = work[a["args"]["External id"]]
    busy = {}
    for g in w:
        busy[g["args"]["stream"]] = busy.get(g["args"]["stream"], 0) + iv(g)[1] - iv(g)[0]
    s = max(busy, key=lambda k: (busy[k], -k))
    on = [iv(g) for g in w if g["args"]["stream"] == s]
    expect.append((kind(a["name"]), s, min(x for x, _ in on), max(y for _, y in on)))
counts = {k: sum(1 for e in expect if e[0] == k) for k in "FBIW"}
for k, n in counts.items():
    assert got["ops"][k] == n, (k, got["ops"], counts)
assert got["ops_from"] == "annotations"
db = sqlite3.connect(sys.argv[4])
epoch = int(db.execute("SELECT value FROM meta WHERE key = 'epoch_ns'").fetchone()[0])
kinds = dict(db.execute("SELECT id, name FROM kinds"))
rows = sorted((kinds[k], s, a + epoch, b + epoch) for k, s, a, b in db.execute("SELECT kind, stream, start_ns, end_ns FROM ops"))
assert rows == sorted(expect), (rows[:5], sorted(expect)[:5])
print("ops", counts)
PY
	then
		ok "stats matches the JSON: GPU span, compute, communication, hidden share, ops ($(head -1 "$T/py.out"))"
	else
		notok "stats matches the JSON: GPU span, compute, communication, hidden share, ops"
		sed 's/^/#   /' "$T/py.out"
	fi

	# the same trace compressed, as the profiler's tensorboard handler writes it
	gzip -c "$DS" >"$T/ds.json.gz"
	run $P import -q "$T/ds.json.gz" -o "$T/gz.db"
	run $P stats --json "$T/gz.db"
	if python3 -c 'import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:]); [d.pop("trace") for d in (a,b)]; sys.exit(a!=b)' \
		"$T/ds.json" "$OUT"; then
		ok "a .json.gz imports to the same figures"
	else
		notok "a .json.gz imports to the same figures"
	fi

	# --comm-streams: the user decides; --op-map: the user names ops
	run $P import -q --comm-streams 7 "$DS" -o "$T/ov.db"
	run $P stats --json "$T/ov.db"
	if python3 - "$DS" "$OUT" <<'PY'
import json, sys
from decimal import Decimal
trace, got = (json.load(open(f)) for f in sys.argv[1:])
ns = lambda us: int(Decimal(str(us)) * 1000)
X = [e for e in trace["traceEvents"] if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
M = sorted((ns(e["ts"]), ns(e["ts"]) + ns(e["dur"])) for e in X if e["args"]["stream"] == 7)
u = []
for s, e in M:
    if u and s <= u[-1][1]:
        u[-1][1] = max(u[-1][1], e)
    else:
        u.append([s, e])
assert got["comm_ns"] == sum(e - s for s, e in u), (got["comm_ns"], sum(e - s for s, e in u))
PY
	then ok "--comm-streams 7 makes stream 7 the communication"; else notok "--comm-streams 7 makes stream 7 the communication"; fi
	expect_out 'ops from annotations: 8 F . 8 B . 8 I . 8 W' "--op-map '(dispatch|combine)\\(F\\)=none' drops those ops" \
		$P import --op-map '(dispatch|combine)\(F\)=none' "$DS" -o "$T/om.db"
fi

# A small nsys-schema database, and the same events as Kineto JSON (tests/data/import/README.md)
if ! command -v sqlite3 >/dev/null; then
	skip "nsys export imports like the equivalent JSON" "no sqlite3 shell"
else
	sqlite3 "$T/small.sqlite" <"$D/import/small.nsys.sql"
	expect_out '^imported 1 file \(Nsight Systems export\) .* 2 ranks' "import an nsys export" \
		$P import "$T/small.sqlite" -o "$T/sn.db"
	expect_out '^imported 2 files \(Kineto JSON\) .* 2 ranks' "import two Kineto files, one per rank" \
		$P import "$D/import/small-rank1.json" "$D/import/small-rank0.json" -o "$T/sj.db"
	dump() {
		sqlite3 "$1" "
		SELECT 'K', rank, stream, device, start_ns, end_ns, (SELECT value FROM strings WHERE id = name), corr FROM kernels ORDER BY 2, 5;
		SELECT 'C', rank, stream, start_ns, end_ns, (SELECT value FROM strings WHERE id = name), corr, bytes, copy_kind FROM memcpy ORDER BY 2, 4;
		SELECT 'S', rank, stream, start_ns, end_ns, corr, bytes FROM memset ORDER BY 2, 4;
		SELECT 'Y', rank, stream, start_ns, end_ns, (SELECT value FROM strings WHERE id = name), corr, sync_type FROM sync ORDER BY 2, 4;
		SELECT 'R', rank, stream, start_ns, end_ns, (SELECT value FROM strings WHERE id = name), corr FROM runtime ORDER BY 2, 4;
		SELECT 'N', rank, stream, start_ns, end_ns, (SELECT value FROM strings WHERE id = name), depth FROM ranges
			WHERE name NOT IN (SELECT id FROM strings WHERE value = 'async-thing') ORDER BY 2, 4, 5;
		SELECT 'O', rank, stream, kind, chunk, mb, start_ns, end_ns FROM ops ORDER BY 2, 7;
		SELECT 'T', rank, stream, role, name FROM streams ORDER BY 2, 3;
		SELECT 'A', rank, device FROM ranks ORDER BY 1;"
	}
	dump "$T/sn.db" >"$T/sn.txt"
	dump "$T/sj.db" >"$T/sj.txt"
	if [ -s "$T/sn.txt" ] && diff "$T/sn.txt" "$T/sj.txt" >"$T/diff" 2>&1; then
		ok "the nsys export and the JSON give the same rows (kernels, copies, runtime, ranges, ops, streams)"
	else
		notok "the nsys export and the JSON give the same rows (kernels, copies, runtime, ranges, ops, streams)"
		sed 's/^/#   /' "$T/diff" | head -20
	fi
	run $P stats --json "$T/sn.db"
	cp "$OUT" "$T/sn.json"
	run $P stats --json "$T/sj.db"
	if python3 - "$T/sn.json" "$OUT" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
for d in (a, b):
    d.pop("trace"); d.pop("backend")
assert a == b
# on paper (tests/data/import/README.md)
r0, r1 = a["per_rank"]
assert (r0["busy_ns"], r0["comm_ns"], r0["overlap_ns"]) == (8200, 3400, 2400), r0
assert (r1["busy_ns"], r1["comm_ns"], r1["overlap_ns"]) == (3500, 4000, 3000), r1
assert a["makespan_ns"] == 9500 and a["ops"] == {"F": 2, "B": 1, "I": 1, "W": 1, "FB": 0}, a
PY
	then ok "... and the same stats, those on paper"; else notok "... and the same stats, those on paper"; fi
	check "nsys push/pop ranges nest per thread and domain; start/end ranges do not" test \
		"$(sqlite3 "$T/sn.db" "SELECT group_concat(x, ' ') FROM (SELECT s.value || '=' || r.depth AS x
			FROM ranges r JOIN strings s ON s.id = r.name ORDER BY r.rank, r.start_ns)")" \
		= "step=0 attn(F)=1 ncclAllReduce=0 async-thing=0 mlp(B)=1 mlp(W)=1 inner=2 F0:1=0 dispatch(B)=0"
	check "an op named in pipetrace's notation keeps its chunk and microbatch (F0:1)" test \
		"$(sqlite3 "$T/sn.db" "SELECT chunk || ':' || mb FROM ops WHERE rank = 1 AND kind = 1")" = "0:1"
	run $P import -q --comm-kernels 'gemm' "$T/small.sqlite" -o "$T/ck.db"
	check "--comm-kernels REGEX replaces the built-in pattern" test \
		"$(sqlite3 "$T/ck.db" "SELECT group_concat(stream || ':' || role) FROM streams WHERE rank = 0 AND stream < 100")" \
		= "7:1,13:0,23:0"

	# bad nsys exports
	cp "$T/small.sqlite" "$T/nostr.sqlite"
	sqlite3 "$T/nostr.sqlite" "DROP TABLE StringIds"
	expect_err 2 "nostr.sqlite: an incomplete Nsight Systems export: table StringIds is missing" \
		"an nsys export without StringIds" $P import "$T/nostr.sqlite" -o "$T/bad1.db"
	cp "$T/small.sqlite" "$T/nokern.sqlite"
	sqlite3 "$T/nokern.sqlite" "DROP TABLE CUPTI_ACTIVITY_KIND_KERNEL"
	expect_err 2 "table CUPTI_ACTIVITY_KIND_KERNEL is missing \(no GPU kernels" \
		"an nsys export without kernels" $P import "$T/nokern.sqlite" -o "$T/bad2.db"
	cp "$T/small.sqlite" "$T/oldcol.sqlite"
	sqlite3 "$T/oldcol.sqlite" "ALTER TABLE CUPTI_ACTIVITY_KIND_RUNTIME RENAME COLUMN nameId TO name"
	expect_err 2 "table CUPTI_ACTIVITY_KIND_RUNTIME is not as pipetrace knows it \(no such column: r.nameId\)" \
		"an nsys table without a column it needs" $P import "$T/oldcol.sqlite" -o "$T/bad3.db"
	sqlite3 "$T/other.sqlite" "CREATE TABLE t(x)"
	expect_err 2 "other.sqlite: an SQLite database, but not an Nsight Systems export" \
		"another program's database" $P import "$T/other.sqlite" -o "$T/bad4.db"
	expect_err 2 "sn.db: already a pipetrace trace" "a pipetrace trace" $P import "$T/sn.db" -o "$T/bad5.db"
	expect_err 2 "cannot mix Kineto JSON and Nsight Systems exports" "mixed inputs" \
		$P import "$T/small.sqlite" "$D/import/small-rank0.json" -o "$T/bad6.db"
fi

# bad JSON: a clear message, exit 2, no output
head -c 1000000 "$DS" >"$T/trunc.json"
expect_err 2 "trunc.json: truncated JSON: the text ends at byte 1000000" "truncated JSON" \
	$P import "$T/trunc.json" -o "$T/bad7.db"
printf '{"traceEvents": [{"ph": "X", "name": "k",, "ts": 1}]}' >"$T/syntax.json"
expect_err 2 "syntax.json: invalid JSON at byte 4[0-9]: " "invalid JSON names the byte" \
	$P import "$T/syntax.json" -o "$T/bad8.db"
printf '{"schemaVersion": 1, "events": []}\n' >"$T/notrace.json"
expect_err 2 "notrace.json: not a trace: the JSON object has no traceEvents array" "JSON that is not a trace" \
	$P import "$T/notrace.json" -o "$T/bad9.db"
printf '{"traceEvents": []}\n' >"$T/empty.json"
expect_err 2 "no events to import" "a trace without events" $P import "$T/empty.json" -o "$T/bad10.db"
head -c 100000 "$T/ds.json.gz" >"$T/trunc.json.gz" 2>/dev/null || head -c 100000 "$DS" | gzip >"$T/trunc.json.gz"
expect_err 2 "trunc.json.gz: truncated" "a truncated .json.gz" $P import "$T/trunc.json.gz" -o "$T/bad11.db"
expect_err 2 "rank 0 again \(already read from" "two files of one rank" \
	$P import "$D/import/small-rank0.json" "$D/import/small-rank0.json" -o "$T/bad12.db"
expect_err 2 "missing.json: no such file" "a missing input" $P import "$T/missing.json" -o "$T/bad13.db"
expect_err 2 "not a valid regular expression" "a bad --comm-kernels" \
	$P import --comm-kernels '(' "$D/import/small-rank0.json" -o "$T/bad14.db"
expect_err 2 "unknown kind 'Q'" "a bad --op-map" $P import --op-map 'x=Q' "$D/import/small-rank0.json" -o "$T/bad15.db"
expect_err 2 "'x' is not a whole number" "a bad --comm-streams" \
	$P import --comm-streams 27,x "$D/import/small-rank0.json" -o "$T/bad16.db"
check "no output after refused imports" sh -c "! ls $T/bad*.db $T/.bad* 2>/dev/null"
expect_err 2 "already exists; pass --force" "an existing output is kept" \
	$P import "$D/import/small-rank0.json" -o "$T/sj.db"

# files without distributedInfo: ranks by their order, with a warning
for r in 0 1; do
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); del d["distributedInfo"]; json.dump(d, sys.stdout)' \
		"$D/import/small-rank$r.json" >"$T/nd$r.json"
done
expect_err 0 "nd1.json: no distributedInfo.rank before its events; importing it as rank 1" \
	"no distributedInfo: file order, with a warning" $P import "$T/nd0.json" "$T/nd1.json" -o "$T/nd.db"
