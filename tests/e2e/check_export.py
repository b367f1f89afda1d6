#!/usr/bin/env python3
"""tests/e2e/check_export.py — checks a `pipetrace export` file against the
trace database it came from, the way a trace viewer would read it.

  check_export.py FILE --db TRACE.db [--ranks 0-3,7] [--from NS] [--to NS] [--kinds F,B]
                  [--args brief|all|none] [--counter-ref FILE] [--same-as FILE]

FILE is a .pftrace (decoded by `protoc --decode` against
exporters/perfetto_trace.proto, an independent decoder, then replayed with
Perfetto's rules: sequences, incremental state, defaults, the incremental
clock, interning), a .json (parsed by Python's json module, times as exact
decimals) or a .csv (Python's csv module). Structure: every track is described
before it is used; every SLICE_END closes an open slice on its track and
every slice is closed; slices on one JSON row nest or are disjoint; each flow
begins before it ends, in the order a trace viewer meets them (by time, ties
in file order: an export in rank groups is not in time order as a whole), and
every message flow goes from a SEND to its RECV;
interned ids are defined on their sequence before use. Content: the slices
are exactly the database's rows in the selection (rank, kind, name — named
here again from the rows, not by pipetrace — start and end in ns), and the
per-rank peak of the activation counter is printed for the caller to compare.
With --same-as, FILE must hold the same slices (with their arguments), flows
and counter values as another export of the same selection, in any order and
on any rows (an export in rank groups against one read at once).
Exits 0 and prints a summary when all holds, 1 with the first problems found.
"""
import argparse
import codecs
import collections
import csv
import decimal
import json
import os
import re
import sqlite3
import subprocess
import sys

KINDS = {1: "F", 2: "B", 3: "I", 4: "W", 5: "FB", 6: "SEND", 7: "RECV", 8: "KERNEL", 9: "MEMCPY",
         10: "MEMSET", 11: "SYNC", 12: "RUNTIME", 13: "RANGE"}
ACTIVITY = {"kernels": 8, "memcpy": 9, "memset": 10, "sync": 11, "runtime": 12, "ranges": 13}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO = os.path.join(ROOT, "exporters", "perfetto_trace.proto")


class Fail(Exception):
    pass


problems = []
content = {}  # what the last file checked holds, for --same-as


def bad(msg):
    problems.append(msg)
    if len(problems) >= 20:
        raise Fail()


# ------------------------------------------------------------------ the db

def op_name(kind, chunk, mb, chunk2, mb2, payload, peer):
    """The op's name, as docs/export.md defines it (written here independently)."""
    k = KINDS[kind]
    if k in ("F", "B", "I", "W"):
        return "%s%d:%d" % (k, chunk, mb)
    if k == "FB":
        return "F%d:%d|B%d:%d" % (chunk, mb, chunk2, mb2)
    p = "G" if payload == 1 else "A"
    if k == "SEND":
        return "SEND %s%d:%d \u2192 r%d" % (p, chunk, mb, peer)
    return "RECV %s%d:%d \u2190 r%d" % (p, chunk, mb, peer)


def db_events(path, sel):
    """The selected rows as (rank, kind, name, start, end)."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    strings = dict(db.execute("SELECT id, value FROM strings"))
    out = []
    where = " WHERE start_ns < ? AND end_ns >= ?"
    args = (sel["to"], sel["from"])
    for r in db.execute("SELECT rank, kind, chunk, mb, chunk2, mb2, start_ns, end_ns FROM ops" + where, args):
        out.append((r[0], KINDS[r[1]], op_name(r[1], r[2], r[3], r[4], r[5], 0, -1), r[6], max(r[6], r[7])))
    for r in db.execute("SELECT rank, kind, chunk, mb, payload, peer, start_ns, end_ns FROM comms" + where, args):
        out.append((r[0], KINDS[r[1]], op_name(r[1], r[2], r[3], None, None, r[4], r[5]), r[6], max(r[6], r[7])))
    for table, kind in ACTIVITY.items():
        for r in db.execute("SELECT rank, name, start_ns, end_ns FROM %s%s" % (table, where), args):
            name = strings.get(r[1]) or KINDS[kind]
            out.append((r[0], KINDS[kind], name, r[2], max(r[2], r[3])))
    out = [e for e in out if (sel["ranks"] is None or e[0] in sel["ranks"]) and
           (sel["kinds"] is None or e[1] in sel["kinds"])]
    # the messages a viewer can draw an arrow for: the RECV does not end
    # before (or as) its SEND begins, unless it begins no earlier either
    sends = {}
    for r in db.execute("SELECT s.rank, s.peer, s.seq FROM comms s JOIN comms r"
                        " ON r.rank = s.peer AND r.peer = s.rank AND r.seq = s.seq AND r.kind = 7"
                        " WHERE s.kind = 6 AND (r.start_ns >= s.start_ns OR r.end_ns > s.start_ns)"):
        sends[(r[0], r[1], r[2])] = True
    return out, sends


def compare(exported, expected, what):
    got = collections.Counter(exported)
    want = collections.Counter(expected)
    if got == want:
        return
    missing = list((want - got).elements())[:5]
    extra = list((got - want).elements())[:5]
    bad("%s: %d slices exported, %d rows in the database; missing %s; unexpected %s" %
        (what, sum(got.values()), sum(want.values()), missing, extra))


# ------------------------------------------------------------ protobuf text

TOKEN = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*|\d+)(?:\s*:\s*(.*?)|\s*\{)\s*$')


def parse_text(text):
    """protoc's text format -> a list of packets, each {field: [values]}."""
    stack = [collections.defaultdict(list)]
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip() == "}":
            node = stack.pop()
            continue
        m = TOKEN.match(line)
        if not m:
            raise Fail("protoc output line %d not understood: %r" % (n, line))
        name, value = m.group(1), m.group(2)
        if name.isdigit():
            bad("field number %s is not in exporters/perfetto_trace.proto (line %d)" % (name, n))
        if value is None:
            node = collections.defaultdict(list)
            stack[-1][name].append(node)
            stack.append(node)
            continue
        if value.startswith('"'):
            v = codecs.escape_decode(value[1:-1].encode("latin-1"))[0].decode("utf-8")
        elif re.match(r'^-?\d+$', value):
            v = int(value)
        elif value in ("true", "false"):
            v = value == "true"
        else:
            v = value
        stack[-1][name].append(v)
    return stack[0].get("packet", [])


def one(node, key, default=None):
    v = node.get(key)
    return v[0] if v else default


def check_pftrace(path, ev, sends, sel):
    with open(path, "rb") as f:
        p = subprocess.run(["protoc", "--decode=perfetto.protos.Trace", "-I", os.path.dirname(PROTO),
                            os.path.basename(PROTO)], stdin=f, capture_output=True)
    if p.returncode != 0:
        raise Fail("protoc --decode failed: %s" % p.stderr.decode(errors="replace").strip())
    packets = parse_text(p.stdout.decode("ascii"))
    tracks = {0: {"name": "", "parent": None, "pid": None, "counter": False}}
    seqs = {}
    stacks = collections.defaultdict(list)
    flows = {}
    flow_evs = []
    counters = collections.defaultdict(list)
    slices = []
    primary = None
    for i, pk in enumerate(packets):
        where = "packet %d" % i
        seq = one(pk, "trusted_packet_sequence_id")
        td = one(pk, "track_descriptor")
        if td is not None:
            uuid = one(td, "uuid")
            if uuid is None:
                bad("%s: a track descriptor without a uuid" % where)
                continue
            parent = one(td, "parent_uuid")
            if parent is not None and parent not in tracks:
                bad("%s: track %d has parent %d, not described before" % (where, uuid, parent))
            proc = one(td, "process")
            pid = one(proc, "pid") if proc else (tracks.get(parent, {}).get("pid") if parent else None)
            tracks[uuid] = {"name": one(td, "name") or (one(proc, "process_name") if proc else ""),
                            "parent": parent, "pid": pid, "counter": one(td, "counter") is not None}
        cs = one(pk, "clock_snapshot")
        flags = one(pk, "sequence_flags", 0)
        if flags & 1:
            if not seq:
                bad("%s: incremental state cleared without a sequence id" % where)
            seqs[seq] = {"defaults": {}, "cats": {}, "names": {}, "args": {}, "clock": None}
        st = seqs.get(seq)
        d = one(pk, "trace_packet_defaults")
        if d is not None:
            if st is None:
                bad("%s: defaults on sequence %s before its state was cleared" % (where, seq))
            else:
                ted = one(d, "track_event_defaults") or {}
                st["defaults"] = {"clock": one(d, "timestamp_clock_id"), "track": one(ted, "track_uuid"),
                                  "counters": ted.get("extra_counter_track_uuids", [])}
        idata = one(pk, "interned_data")
        if idata is not None:
            if st is None:
                bad("%s: interned data on sequence %s before its state was cleared" % (where, seq))
            else:
                for field, table in (("event_categories", "cats"), ("event_names", "names"),
                                     ("debug_annotation_names", "args")):
                    for e in idata.get(field, []):
                        st[table][one(e, "iid")] = one(e, "name")
        if cs is not None:
            clocks = {one(c, "clock_id"): c for c in cs.get("clocks", [])}
            if one(cs, "primary_trace_clock") is not None:
                primary = one(cs, "primary_trace_clock")
            if 64 in clocks:
                if st is None:
                    bad("%s: a sequence clock on sequence %s before its state was cleared" % (where, seq))
                elif not one(clocks[64], "is_incremental") or 6 not in clocks:
                    bad("%s: sequence clock 64 must be incremental and tied to BOOTTIME" % where)
                else:
                    st["clock"] = [one(clocks[64], "timestamp"), one(clocks[6], "timestamp") - one(clocks[64], "timestamp")]
            continue
        te = one(pk, "track_event")
        if te is None:
            continue
        if st is None:
            bad("%s: a track event on sequence %s, whose incremental state was never cleared" % (where, seq))
            continue
        defaults = st["defaults"]
        clock = one(pk, "timestamp_clock_id") or defaults.get("clock")
        if one(pk, "timestamp") is None:
            bad("%s: a track event without a timestamp" % where)
            continue
        if clock == 64:
            if st["clock"] is None:
                bad("%s: incremental timestamp on sequence %s without its clock snapshot" % (where, seq))
                continue
            st["clock"][0] += one(pk, "timestamp")
            ts = st["clock"][0] + st["clock"][1]
        else:
            ts = one(pk, "timestamp")
        track = one(te, "track_uuid", defaults.get("track"))
        if track not in tracks or track == 0:
            bad("%s: track %s used before it was described" % (where, track))
            continue
        t = tracks[track]
        typ = one(te, "type")
        cvals = te.get("extra_counter_values", [])
        cuuids = te.get("extra_counter_track_uuids", []) or defaults.get("counters", [])
        for k, v in enumerate(cvals):
            if k >= len(cuuids) or cuuids[k] not in tracks or not tracks[cuuids[k]]["counter"]:
                bad("%s: a counter value for no described counter track" % where)
            else:
                counters[tracks[cuuids[k]]["pid"]].append((ts, v))
        if typ == "TYPE_SLICE_BEGIN":
            if t["counter"]:
                bad("%s: a slice on counter track %d" % (where, track))
            if one(te, "name") is not None:
                name = one(te, "name")
            elif one(te, "name_iid") in st["names"]:
                name = st["names"][one(te, "name_iid")]
            else:
                bad("%s: name_iid %s not interned on sequence %s" % (where, one(te, "name_iid"), seq))
                name = None
            cats = [st["cats"].get(c) for c in te.get("category_iids", [])]
            if None in cats or len(cats) != 1:
                bad("%s: category iids %s not interned on sequence %s" % (where, te.get("category_iids"), seq))
            args = {}
            for a in te.get("debug_annotations", []):
                key = st["args"].get(one(a, "name_iid"))
                if key is None:
                    bad("%s: annotation name iid %s not interned" % (where, one(a, "name_iid")))
                for vk in ("string_value", "uint_value", "int_value"):
                    if vk in a:
                        args[key] = one(a, vk)
            s = {"pid": t["pid"], "track": track, "name": name, "cat": cats[0] if cats else None,
                 "ts": ts, "args": args}
            stacks[track].append(s)
            slices.append(s)
            if te.get("flow_ids") or te.get("terminating_flow_ids"):
                flow_evs.append((ts, i, where, s, te.get("flow_ids", []), te.get("terminating_flow_ids", [])))
        elif typ == "TYPE_SLICE_END":
            if not stacks[track]:
                bad("%s: SLICE_END on track %d with no open slice" % (where, track))
                continue
            s = stacks[track].pop()
            if ts < s["ts"]:
                bad("%s: slice %r ends before it begins" % (where, s["name"]))
            s["dur"] = ts - s["ts"]
            # trace processor takes flows on an end too, for the slice it ends
            if te.get("flow_ids") or te.get("terminating_flow_ids"):
                flow_evs.append((ts, i, where, s, te.get("flow_ids", []), te.get("terminating_flow_ids", [])))
        else:
            bad("%s: unexpected track event type %s" % (where, typ))
    if primary != 6:
        bad("the trace's primary clock is %s, not BOOTTIME (6)" % primary)
    for track, st in stacks.items():
        if st:
            bad("track %d: %d slices never end (first %r)" % (track, len(st), st[0]["name"]))
    # flows as trace processor joins them: after sorting the events by time,
    # ties in file order; an end met before its flow began is dropped
    for ts, i, where, s, begins, ends in sorted(flow_evs, key=lambda f: (f[0], f[1])):
        for fid in begins:
            if fid in flows and flows[fid]["end"] is not None:
                bad("%s: flow %x continues after it ended" % (where, fid))
            flows.setdefault(fid, {"src": s, "steps": [], "end": None})
            if flows[fid]["src"] is not s:
                flows[fid]["steps"].append(s)
        for fid in ends:
            if fid not in flows:
                bad("%s: flow %x ends before it began" % (where, fid))
                continue
            flows[fid]["end"] = s
    exported = [(s["pid"], s["cat"], s["name"], s["ts"], s["ts"] + s.get("dur", 0)) for s in slices]
    compare(exported, ev, os.path.basename(path))
    check_args(slices, sel["args"])
    check_flows({k: (v["src"], v["end"]) for k, v in flows.items()}, sends, sel)
    remember(slices, {k: (v["src"], v["end"]) for k, v in flows.items()}, counters)
    return len(slices), sum(1 for f in flows.values() if f["end"] is not None), counters


def slice_key(s):
    return (s["pid"], s["cat"], s["name"], s["ts"], s.get("dur", 0), json.dumps(s["args"], sort_keys=True, default=str))


def remember(slices, flows, counters):
    """What a file holds, whatever its order and rows: for --same-as."""
    content.clear()
    content["slices"] = collections.Counter(slice_key(s) for s in slices)
    content["flows"] = {fid: (slice_key(a), b and slice_key(b)) for fid, (a, b) in flows.items()}
    content["counters"] = {pid: sorted(v) for pid, v in counters.items()}


NAMED = {"kind", "chunk", "mb", "chunk2", "mb2", "payload", "peer"}


def check_args(slices, mode):
    """An op slice's annotations: by default (brief) none of what its name and
    category say, but its plan step; all of them with --all-args; none with
    --no-args."""
    for s in slices:
        if s["cat"] not in ("F", "B", "I", "W", "FB", "SEND", "RECV"):
            continue
        keys = set(s["args"])
        if mode == "brief" and (keys & NAMED or "step" not in keys):
            bad("slice %r: annotations %s; brief ones leave out %s and keep step" % (s["name"], sorted(keys), sorted(NAMED)))
        elif mode == "all" and (s["args"].get("kind") != s["cat"] or not {"chunk", "mb"} <= keys):
            bad("slice %r: annotations %s, not all of them" % (s["name"], sorted(keys)))
        elif mode == "none" and keys:
            bad("slice %r: annotations %s with --no-args" % (s["name"], sorted(keys)))


def check_flows(flows, sends, sel):
    """Message flows: one per SEND whose RECV is exported, from that SEND to that RECV."""
    msgs = 0
    for fid, (src, end) in flows.items():
        if fid >> 62 != 1:
            continue
        msgs += 1
        if end is None:
            bad("message flow %x from %r never arrives" % (fid, src["name"]))
            continue
        if src["cat"] != "SEND" or end["cat"] != "RECV":
            bad("message flow %x goes from %s %r to %s %r" % (fid, src["cat"], src["name"], end["cat"], end["name"]))
            continue
        a, b = src["args"], end["args"]
        if a and b and (a.get("peer", end["pid"]) != end["pid"] or b.get("peer", src["pid"]) != src["pid"] or
                        a.get("seq") != b.get("seq")):
            bad("message flow %x joins %r on rank %s and %r on rank %s: not a pair" %
                (fid, src["name"], src["pid"], end["name"], end["pid"]))
    if sel["full"] and msgs != len(sends):
        bad("%d message flows for %d messages" % (msgs, len(sends)))


# -------------------------------------------------------------------- json

def check_json(path, ev, sends, sel):
    with open(path, "rb") as f:
        doc = json.load(f, parse_float=decimal.Decimal)
    events = doc["traceEvents"]
    names = {}
    rows = collections.defaultdict(list)
    flows = {}
    counters = collections.defaultdict(list)
    slices = []
    for e in events:
        ph = e["ph"]
        if ph == "M":
            names[(e["name"], e["pid"], e.get("tid"))] = e["args"]
        elif ph == "X":
            ts = int(decimal.Decimal(e["ts"]) * 1000)
            dur = int(decimal.Decimal(e["dur"]) * 1000)
            if decimal.Decimal(e["ts"]) * 1000 != ts:
                bad("slice %r: ts %s is not a whole ns" % (e["name"], e["ts"]))
            s = {"pid": e["pid"], "tid": e["tid"], "name": e["name"], "cat": e["cat"], "ts": ts, "dur": dur,
                 "args": e.get("args", {})}
            rows[(e["pid"], e["tid"])].append(s)
            slices.append(s)
        elif ph in "stf":
            key = (e["id"], e["cat"], e["name"])
            ts = int(decimal.Decimal(e["ts"]) * 1000)
            flows.setdefault(key, []).append((ph, e["pid"], e["tid"], ts, e.get("bp")))
            # a viewer meets them by time, ties in file order (a stable sort)
            flows[key].sort(key=lambda f: f[3])
        elif ph == "C":
            counters[e["pid"]].append((int(decimal.Decimal(e["ts"]) * 1000), list(e["args"].values())[0]))
    for (pid, tid), ss in rows.items():
        if ("process_name", pid, 0) not in names:
            bad("rank %s has no process_name metadata" % pid)
        if ("thread_name", pid, tid) not in names:
            bad("row %s/%s has no thread_name metadata" % (pid, tid))
        ss.sort(key=lambda s: (s["ts"], -s["dur"]))
        open_ = []
        for s in ss:
            while open_ and open_[-1]["ts"] + open_[-1]["dur"] <= s["ts"] and not (
                    open_[-1]["dur"] == 0 and s["dur"] == 0 and False):
                open_.pop()
            if open_ and s["ts"] + s["dur"] > open_[-1]["ts"] + open_[-1]["dur"]:
                bad("row %s/%s: %r overlaps %r without nesting" % (pid, tid, s["name"], open_[-1]["name"]))
            open_.append(s)
    exported = [(s["pid"], s["cat"], s["name"], s["ts"], s["ts"] + s["dur"]) for s in slices]
    compare(exported, ev, os.path.basename(path))
    # bind each flow event to the slice that starts at its ts on its row (with
    # rows, each row holds at most one slice starting there: the binding is
    # exact); an f with bp:e to the innermost slice open at its ts
    starts = collections.defaultdict(list)
    for s in slices:
        starts[(s["pid"], s["tid"], s["ts"])].append(s)

    def enclosing(pid, tid, ts):
        cand = [s for s in rows[(pid, tid)] if s["ts"] <= ts < s["ts"] + s["dur"] or s["ts"] == ts]
        if not cand:
            return []
        last = max(s["ts"] for s in cand)
        return [s for s in cand if s["ts"] == last]
    bound = {}
    for key, evs in flows.items():
        phases = [x[0] for x in evs]
        if phases[0] != "s" or phases.count("s") != 1 or "f" in phases[:-1]:
            bad("flow %s: events %s, not one s, then t..., then f" % (key, phases))
            continue
        ends = []
        for ph, pid, tid, ts, bp in evs:
            cand = enclosing(pid, tid, ts) if ph == "f" and bp == "e" else starts.get((pid, tid, ts), [])
            if len(cand) != 1:
                bad("flow %s: %s event at %s/%s ts %d matches %d slices" % (key, ph, pid, tid, ts, len(cand)))
                break
            if ph == "f" and bp != "e":
                bad("flow %s: f without bp:e" % (key,))
            ends.append(cand[0])
        else:
            bound[int(key[0], 16)] = (ends[0], ends[-1] if phases[-1] == "f" else None)
    check_flows(bound, sends, sel)
    remember(slices, bound, counters)
    return len(slices), sum(1 for v in bound.values() if v[1] is not None), counters


# --------------------------------------------------------------------- csv

def check_csv(path, ev, sends, sel):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    exported = [(int(r["rank"]), r["kind"], r["name"], int(r["start_ns"]), int(r["end_ns"])) for r in rows]
    for r in rows:
        if int(r["dur_ns"]) != int(r["end_ns"]) - int(r["start_ns"]):
            bad("csv row %r: dur_ns is not end_ns - start_ns" % r["name"])
    compare(exported, ev, os.path.basename(path))
    content.clear()
    content["rows"] = collections.Counter(tuple(sorted(r.items())) for r in rows)
    return len(rows), 0, {}


def ranks_arg(s):
    out = set()
    for part in s.split(","):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--db", required=True)
    ap.add_argument("--ranks", type=ranks_arg)
    ap.add_argument("--from", dest="from_", type=int, default=-(1 << 63))
    ap.add_argument("--to", type=int, default=(1 << 63) - 1)
    ap.add_argument("--kinds", type=lambda s: set(s.split(",")))
    ap.add_argument("--args", choices=("brief", "all", "none"),
                    help="the .pftrace's annotations on op slices: the default, --all-args or --no-args")
    ap.add_argument("--counter-ref", help="an export of the whole trace: counter values must agree with it")
    ap.add_argument("--same-as", help="another export of the same selection: the same slices, flows and counters")
    a = ap.parse_args()
    sel = {"ranks": a.ranks, "from": a.from_, "to": a.to, "kinds": a.kinds, "args": a.args,
           "full": a.ranks is None and a.kinds is None and a.from_ == -(1 << 63) and a.to == (1 << 63) - 1}
    ev, sends = db_events(a.db, sel)
    checks = {".pftrace": check_pftrace, ".perfetto-trace": check_pftrace, ".json": check_json, ".csv": check_csv}
    check = checks[os.path.splitext(a.file)[1]]
    try:
        n, nflows, counters = check(a.file, ev, sends, sel)
    except Fail as e:
        if e.args:
            problems.append(e.args[0])
    except (ValueError, KeyError, TypeError) as e:
        problems.append("malformed: %s: %s" % (type(e).__name__, e))
    if a.same_as and not problems:
        mine = dict(content)
        content.clear()
        try:
            checks[os.path.splitext(a.same_as)[1]](a.same_as, ev, sends, sel)
        except Fail as e:
            problems.extend(e.args)
        for what in sorted(mine):
            if mine[what] != content.get(what):
                if what not in content:
                    diff = "%s has none" % a.same_as
                elif isinstance(mine[what], collections.Counter):
                    diff = list((mine[what] - content[what]).elements())[:3] + list((content[what] - mine[what]).elements())[:3]
                else:
                    diff = [k for k in set(mine[what]) | set(content[what]) if mine[what].get(k) != content[what].get(k)][:3]
                bad("%s differ from %s's: %s" % (what, a.same_as, diff))
    if problems:
        for p in problems:
            print("FAIL: %s" % p)
        return 1
    peaks = {pid: max((v for _, v in vals), default=0) for pid, vals in counters.items()}
    if any(v < 0 for vals in counters.values() for _, v in vals):
        print("FAIL: a counter goes below zero")
        return 1
    if a.counter_ref:
        full = dict(sel, ranks=None, kinds=None, **{"from": -(1 << 63), "to": (1 << 63) - 1})
        ref = {".pftrace": check_pftrace, ".json": check_json}[os.path.splitext(a.counter_ref)[1]](
            a.counter_ref, db_events(a.db, full)[0], sends, full)[2]
        for pid, vals in counters.items():
            want = dict(ref.get(pid, []))  # the last value at each time
            for ts, v in dict(vals).items():
                if want.get(ts) != v:
                    print("FAIL: rank %s: %d activations at %d ns, the whole trace has %s" % (pid, v, ts, want.get(ts)))
                    return 1
    print("ok: %d slices, %d flows, peak activations %s" %
          (n, nflows, json.dumps({str(k): v for k, v in sorted(peaks.items())})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
