#!/usr/bin/env python3
"""Rebuilds the rule fixtures in this folder. Operator ids say what the rule tests expect:
`hit-*` must be flagged by the rule the file is named after, `ok-*` must not. Times are local
(Asia/Shanghai); the join log is in UTC with member numbers written in other shapes."""
import zlib
from datetime import datetime, timedelta


def num(*key):
    return "139%08d" % (zlib.crc32(repr(key).encode()) % 10**8)


def row(op, start, talk, cli="+447700900123", callee="13912345678", ip="36.112.0.1", camp="", ring=10):
    s = datetime.fromisoformat(start)
    a = s + timedelta(seconds=ring)
    e = a + timedelta(seconds=talk)
    f = lambda t: t.strftime("%Y-%m-%d %H:%M:%S")
    return f"{op},{f(s)},{f(a) if talk else ''},{f(e)},{ring+talk},{talk},{cli},{callee},{ip},{'ANSWERED' if talk else 'NO ANSWER'},{camp}"


H = "operator_id,start_time,answer_time,end_time,duration,billsec,caller_id,callee,src_ip,disposition,campaign"


def block(op, start, n, talk, gap=300, **kw):
    out, t = [], datetime.fromisoformat(start)
    for i in range(n):
        out.append(row(op, t.isoformat(sep=" "), talk, callee=num(op, start, i), **kw))
        t += timedelta(seconds=10 + talk + gap)
    return out, t - timedelta(seconds=gap)


# long-shift
rows = [H]
r, _ = block("hit-night-shift", "2026-03-02 20:00:00", 9, 3600)   # 9 h talk, 20:00 -> 05:40 next day
rows += r
r, _ = block("ok-7h54m-talk", "2026-03-02 08:00:00", 7, 3600)     # 7 h ...
rows += r
rows.append(row("ok-7h54m-talk", "2026-03-02 16:00:00", 3240, callee=num("ok", 7)))  # ... + 54 min
r, t = block("ok-split-2h01m", "2026-03-02 08:00:00", 3, 5400, gap=0)               # 4.5 h
rows += r
r, _ = block("ok-split-2h01m", (t + timedelta(minutes=121)).isoformat(sep=" "), 3, 5400, gap=0)
rows += r                                                         # 2 h 1 min later: a second shift
r, t = block("hit-gap-2h00m", "2026-03-02 08:00:00", 3, 5400, gap=0)
rows += r
r, _ = block("hit-gap-2h00m", (t + timedelta(minutes=120)).isoformat(sep=" "), 3, 5400, gap=0)
rows += r                                                         # exactly 2 h: one 9 h shift
open("long_shift.csv", "w").write("\n".join(rows) + "\n")

# spoofed-foreign-cli (hit-domestic-campaign only with domestic_campaigns = ["edu-refund-01"])
rows = [H]
for i in range(5):
    rows.append(row("hit-0044-cli-ipv6-home", f"2026-03-02 09:0{i}:00", 40, cli="0044 20 7946 0123", callee=num("a", i), ip="240e:3a1:4c2::9"))
    rows.append(row("ok-overseas-team", f"2026-03-02 09:0{i}:00", 40, cli="+63 2 8123 4567", callee=num("b", i), ip="112.198.33.7"))
    rows.append(row("ok-home-cli", f"2026-03-02 09:0{i}:00", 40, cli="021 6123 4567", callee=num("c", i), ip="36.112.0.9"))
    rows.append(row("hit-domestic-campaign", f"2026-03-02 09:0{i}:00", 40, cli="+1 646 555 0142", callee=num("d", i), ip="", camp="edu-refund-01"))
for i in range(4):
    rows.append(row("ok-only-4-calls", f"2026-03-02 09:0{i}:00", 40, cli="+447700900777", callee=num("e", i), ip="36.112.0.7"))
open("spoofed.csv", "w").write("\n".join(rows) + "\n")

# foreign-cli-fanout (the test lowers fanout_min_callees to 3): +447700900999 reaches 3 callees
# through fan-a and fan-b; +447700900888 reaches 2 (one of them twice)
rows = [H]
rows.append(row("fan-a", "2026-03-02 10:00:00", 30, cli="+447700900999", callee="13900000001"))
rows.append(row("fan-b", "2026-03-02 10:05:00", 30, cli="+447700900999", callee="13900000002"))
rows.append(row("fan-b", "2026-03-02 10:10:00", 30, cli="+447700900999", callee="+86 139 0000 0003"))
rows.append(row("fan-c", "2026-03-02 10:10:00", 30, cli="+447700900888", callee="13900000004"))
rows.append(row("fan-c", "2026-03-02 10:15:00", 30, cli="+447700900888", callee="13900000004"))
rows.append(row("fan-c", "2026-03-02 10:20:00", 30, cli="+447700900888", callee="13900000005"))
open("fanout.csv", "w").write("\n".join(rows) + "\n")

# group-invite-conversion
rows, joins = [H], ["group_id,member,joined_at,platform,inviter"]


def utc(local):  # Asia/Shanghai is UTC+8
    return (local - timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ")


for k, (op, join_after, answered, n_join) in enumerate([
        ("hit-three-joins", 10, True, 3), ("ok-two-coincidences", 10, True, 2),
        ("ok-joins-61min-later", 61, True, 3), ("ok-unanswered", 5, False, 3)]):
    for i in range(10):
        callee = "15%d%08d" % (k, i)
        start = datetime(2026, 3, 2, 9, 0) + timedelta(minutes=6 * i)
        talk = 120 if answered else 0
        rows.append(row(op, start.isoformat(sep=" "), talk, callee=callee))
        end = start + timedelta(seconds=10 + talk)
        if i < n_join:
            shape = ["+86 %s-%s-%s" % (callee[:3], callee[3:7], callee[7:]), "0086" + callee, callee][i % 3]
            joins.append("G-%d,%s,%s,qq," % (k, shape, utc(end + timedelta(minutes=join_after))))
open("conversion.csv", "w").write("\n".join(rows) + "\n")
open("conversion_joins.csv", "w").write("\n".join(joins) + "\n")

# shared-seat: one seat in several answered calls at once
rows = [H]
for k in range(4):  # four people on seat 8001, each 15 calls of 10 min from 09:00 + k*7 min
    r, _ = block("hit-shared-8001", "2026-03-02 09:%02d:00" % (k * 7), 15, 600, gap=60)
    rows += r
for k in range(2):  # two people for an hour: 40 min at two calls
    r, _ = block("hit-shared-pair", "2026-03-02 14:%02d:00" % (k * 20), 6, 590, gap=0)
    rows += r
# one agent whose attended transfers overlap the next call by 30 s, 6 times (3 min at two calls)
t = datetime.fromisoformat("2026-03-02 09:00:00")
for i in range(40):
    rows.append(row("ok-transfer-blips", t.isoformat(sep=" "), 300, callee=num("blip", i)))
    t += timedelta(seconds=10 + 300 - (30 if i % 7 == 3 else -20))
# a predictive dialer's overlapping unanswered attempts, one answered call at a time
t = datetime.fromisoformat("2026-03-02 09:00:00")
for i in range(60):
    rows.append(row("ok-dialer-ringing", t.isoformat(sep=" "), 0, callee=num("ring", i), ring=40))
    if i % 5 == 4:
        rows.append(row("ok-dialer-ringing", (t + timedelta(seconds=45)).isoformat(sep=" "), 240, callee=num("ans", i)))
        t += timedelta(seconds=300)
    t += timedelta(seconds=10)
open("shared_seat.csv", "w").write("\n".join(rows) + "\n")

# cli-rotation: a seat cycling through a pool, and the near misses (one company number, four
# numbers, six numbers used in blocks, a short shift)
rows = [H]
pool = ["+447700900%03d" % k for k in range(8)]
t0 = datetime.fromisoformat("2026-03-02 09:00:00")
for i in range(30):
    t = (t0 + timedelta(minutes=3 * i)).isoformat(sep=" ")
    rows.append(row("hit-pool-of-8", t, 60, cli=pool[(i * 3) % 8], callee=num("r1", i)))
    rows.append(row("ok-company-number", t, 60, cli="021 6123 4567", callee=num("r2", i)))
    rows.append(row("ok-four-numbers", t, 60, cli=pool[i % 4], callee=num("r3", i)))
    rows.append(row("ok-six-in-blocks", t, 60, cli=pool[(i // 5) % 6], callee=num("r4", i)))
    if i < 19:
        rows.append(row("ok-19-calls", t, 60, cli=pool[i % 8], callee=num("r5", i)))
open("cli_rotation.csv", "w").write("\n".join(rows) + "\n")
