"""The crew analysis (src/rules/crew/): operators tied by named evidence, kind by kind; crews as the
connected components of the strong links; who listened in on whom; earnings per crew.

The pairs of each kind are found on the cluster (self-joins of (day, value, operator) facts whose
value at most `max_group` operators share) and only the pairs whose kind meets its threshold (the
only ones a link's strength counts) reach the driver, where the components, findings and tables are
made as the native rule makes them. Campaign and group names are ordered by the same 64-bit BLAKE3
value as the native facts (`facts::text_value`), so examples come in the same order."""

import math
from datetime import date, timedelta

import blake3
from pyspark.sql import Window
from pyspark.sql import functions as F

from .crossday import day_start, pay_days
from .prepare import rust_round
from .rules import finding, utc


def local_seconds(us, tz):
    from zoneinfo import ZoneInfo

    return utc(us).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")

KINDS = ["shared-cli", "shared-group", "lead-list", "same-ip", "shift-sync", "campaign", "monitoring"]
COLUMN = {k: "links_" + k.replace("-", "_") for k in KINDS}
THRESHOLD = {
    "shared-cli": "shared_clis",
    "shared-group": "shared_groups",
    "lead-list": "lead_list_min_common",
    "same-ip": "same_ip_days",
    "shift-sync": "sync_days",
    "campaign": "campaign_days",
    "monitoring": "monitoring_sessions",
}
WEIGHT = {k: k.replace("-", "_") for k in KINDS}
DEFAULTS = {
    "min_strength": 1.0,
    "max_group": 50,
    "shared_clis": 2,
    "shared_groups": 1,
    "group_min_conversions": 2,
    "lead_list_min_common": 10,
    "lead_list_max_chance": 1e-6,
    "same_ip_days": 2,
    "sync_minutes": 10,
    "sync_days": 3,
    "campaign_days": 1,
    "monitoring_sessions": 1,
    "min_flagged_members": 2,
    "diversion_rules": ["spoofed-foreign-cli", "group-invite-conversion", "cli-rotation", "repeat-spoofer"],
    "min_member_score": 0.8,
    "brief_call_seconds": 120,
    "brief_call_targets": 3,
    "weights": {
        "shared_cli": 1.0,
        "shared_group": 1.0,
        "lead_list": 1.0,
        "same_ip": 0.5,
        "shift_sync": 0.5,
        "campaign": 0.5,
        "monitoring": 1.0,
    },
}
LEAD_SAMPLE_ABOVE = 1_000_000
U64 = 1 << 64


def text_value(s: str) -> int:
    """`facts::text_value`: 64 bits of the text's BLAKE3, little-endian."""
    return int.from_bytes(blake3.blake3(s.encode("utf-8")).digest()[:8], "little")


class Pair:
    __slots__ = ("counts", "examples", "chance")

    def __init__(self):
        self.counts = dict.fromkeys(KINDS, 0)
        self.examples = {k: [] for k in KINDS}
        self.chance = None

    def meets(self, k, cc):
        n = self.counts[k]
        if k == "lead-list":
            return n >= cc["lead_list_min_common"] and self.chance is not None and self.chance <= cc["lead_list_max_chance"]
        return n > 0 and n >= cc[THRESHOLD[k]]

    def kinds(self, cc):
        return [k for k in KINDS if self.meets(k, cc)]

    def strength(self, cc):
        return sum(cc["weights"][WEIGHT[k]] for k in self.kinds(cc))


def poisson_tail(lam: float, k: int) -> float:
    """links.rs `poisson_tail`: P(X >= k) for X ~ Poisson(lam), summed in log space."""
    if k == 0:
        return 1.0
    if lam <= 0.0:
        return 0.0
    if k <= lam:
        return min(1.0, 0.5 + 0.5 * (1.0 - k / lam))

    def ln_fact(n):
        if n < 30:
            return sum(math.log(i) for i in range(2, n + 1))
        x = float(n)
        return x * math.log(x) - x + 0.5 * math.log(2.0 * math.pi * x) + 1.0 / (12.0 * x) - 1.0 / (360.0 * x**3)

    total, j = 0.0, k
    while True:
        t = math.exp(-lam + j * math.log(lam) - ln_fact(j))
        total += t
        if t < total * 1e-12 or j > k + 10_000:
            break
        j += 1
    return min(total, 1.0)


def shared_pairs(items, key, mx, extra=()):
    """(key..., extra..., a, b) for every two operators (a < b) of a key that 2..mx operators
    share."""
    sized = items.withColumn("_n", F.count(F.lit(1)).over(Window.partitionBy(*key))).filter(
        (F.col("_n") >= 2) & (F.col("_n") <= mx)
    )
    a = sized.select(*key, *extra, F.col("operator_id").alias("a"))
    b = sized.select(*key, F.col("operator_id").alias("b"))
    return a.join(b, key).filter(F.col("a") < F.col("b"))


def analyse(spark, cdr, shifts, conv, findings, run_profiles, cfg, tz):
    """The crew rule's findings, tables, per-operator crew ids and monitoring list."""
    cc = dict(DEFAULTS)
    cc.update({k: v for k, v in cfg["rules"].get("crew", {}).items() if k not in ("weights", "pay")})
    cc["weights"] = {**DEFAULTS["weights"], **cfg["rules"].get("crew", {}).get("weights", {})}
    pay_cfg = cfg["rules"]["crew"]["pay"]
    mx = cc["max_group"]
    ops = sorted(r["operator_id"] for r in cdr.select("operator_id").distinct().collect())
    index = {o: i for i, o in enumerate(ops)}
    pairs = {}

    def pair(a, b):
        if index[a] > index[b]:
            a, b = b, a
        p = pairs.get((a, b))
        if p is None:
            p = pairs[(a, b)] = Pair()
        return p

    out_dir = F.col("direction") == "outbound"
    # shared caller IDs: distinct caller IDs both showed on a same day
    clis = cdr.filter(out_dir & F.col("caller_num").isNotNull()).select("day", "caller_num", "operator_id").distinct().cache()
    sc = (
        shared_pairs(clis, ["day", "caller_num"], mx)
        .groupBy("a", "b")
        .agg(F.countDistinct("caller_num").alias("n"), F.collect_list(F.struct("caller_num", "day")).alias("ex"))
        .filter(F.col("n") >= max(cc["shared_clis"], 1))
    )
    for r in sc.collect():
        p = pair(r["a"], r["b"])
        p.counts["shared-cli"] = r["n"]
        by_cli = {}
        for e in sorted(r["ex"], key=lambda e: (e["caller_num"], e["day"])):
            by_cli.setdefault(e["caller_num"], []).append(e["day"])
        exs = []
        for c in sorted(by_cli)[:5]:
            days = by_cli[c]
            more = f" and {len(days) - 3} more day(s)" if len(days) > 3 else ""
            exs.append(f"+{c} on {', '.join(days[:3])}{more}")
        p.examples["shared-cli"] = exs
    # the same network or campaign on the same day
    nets = cdr.filter(F.col("src_net").isNotNull()).select("day", "src_net", "src_network", "operator_id").distinct()
    keyed(pair, "same-ip", nets, ["day", "src_net"], "src_network", mx, cc)
    camps = cdr.filter(F.col("campaign").isNotNull()).select("day", "campaign", "operator_id").distinct()
    texts = [r["campaign"] for r in camps.select("campaign").distinct().collect()]
    if texts:
        order = spark.createDataFrame([(t, text_value(t) - (1 << 63)) for t in texts], "campaign string, ck long")
        camps = camps.join(F.broadcast(order), "campaign")
        keyed(pair, "campaign", camps, ["day", "ck"], "campaign", mx, cc)
    lead_lists(pair, cdr, mx, cc)
    shift_sync(pair, shifts, index, mx, cc)
    shared_groups(pair, conv, index, mx, cc)
    monitors = monitoring(pair, cdr, ops, index, cc)
    return judge(pairs, ops, index, clis, shifts, monitors, findings, run_profiles, cc, pay_cfg, tz)


def keyed(pair, kind, items, key, say, mx, cc):
    """Each pair of operators of a (day, value) key gets one more of `kind`; examples: the first
    five keys in key order, as `day text`."""
    p = (
        shared_pairs(items, key, mx, [say])
        .groupBy("a", "b")
        .agg(F.count(F.lit(1)).alias("n"), F.slice(F.array_sort(F.collect_list(F.struct(*key, say))), 1, 5).alias("ex"))
        .filter(F.col("n") >= max(cc[THRESHOLD[kind]], 1))
    )
    for r in p.collect():
        x = pair(r["a"], r["b"])
        x.counts[kind] = r["n"]
        x.examples[kind] = [f"{e['day']} {e[say]}" for e in r["ex"]]


def lead_lists(pair, cdr, mx, cc):
    """Common callees per pair, and the chance of so many among lists of their sizes; above a
    million (operator, callee) facts, the native 1-in-k sample by a multiplicative hash."""
    calls = cdr.filter((F.col("direction") == "outbound") & F.col("callee_num").isNotNull()).select(
        "callee_num", "operator_id"
    )
    n = calls.count()
    k = max(-(-n // LEAD_SAMPLE_ABOVE), 1)
    if k > 1:
        # c * 0x9E3779B97F4A7C15 (wrapping, as ANSI-off long arithmetic is) rotated left by 17,
        # then its unsigned value modulo k
        h = F.col("callee_num") * F.lit(0x9E3779B97F4A7C15 - U64)
        rot = F.shiftleft(h, 17).bitwiseOR(F.shiftrightunsigned(h, 47))
        unsigned_mod = F.when(rot >= 0, F.pmod(rot, F.lit(k))).otherwise(F.pmod(F.pmod(rot, F.lit(k)) + F.lit(U64 % k), F.lit(k)))
        calls = calls.filter(unsigned_mod == 0)
    facts = calls.distinct().cache()
    universe = facts.select("callee_num").distinct().count()
    sizes = {r["operator_id"]: r["n"] for r in facts.groupBy("operator_id").agg(F.count(F.lit(1)).alias("n")).collect()}
    mn = max(cc["lead_list_min_common"], 2)
    common = shared_pairs(facts, ["callee_num"], mx).groupBy("a", "b").agg(F.count(F.lit(1)).alias("n")).filter(F.col("n") >= mn)
    sampled = f" (in the 1-in-{k} sample of callees every list is read through)" if k > 1 else ""
    for r in common.collect():
        sa, sb = sizes[r["a"]], sizes[r["b"]]
        expected = float(sa) * float(sb) / float(max(universe, 1))
        p = pair(r["a"], r["b"])
        p.counts["lead-list"] = r["n"]
        p.chance = poisson_tail(expected, r["n"])
        p.examples["lead-list"] = [
            f"{r['n']} common callees of {sa} and {sb} dialled ({expected:.2f} expected by chance among {universe}){sampled}"
        ]
    facts.unpersist()


def shift_sync(pair, shifts, index, mx, cc):
    """Days on which two operators' first shifts started within `sync_minutes`; a start with more
    than `max_group` others in the window ties nobody (links.rs `shift_sync`)."""
    w = cc["sync_minutes"] * 60 * 1_000_000
    starts = shifts.groupBy("operator_id", "day").agg(F.min("shift_start_us").alias("t"))
    a = starts.select(F.col("day"), F.col("operator_id").alias("a"), F.col("t").alias("ta"))
    b = starts.select(F.col("day"), F.col("operator_id").alias("b"), F.col("t").alias("tb"))
    near = a.join(b, "day").filter((F.abs(F.col("tb") - F.col("ta")) <= w) & (F.col("a") != F.col("b")))
    crowded = near.groupBy("day", "a").agg(F.count(F.lit(1)).alias("others")).filter(F.col("others") > mx)
    rows = near.join(crowded.select("day", "a"), ["day", "a"], "left_anti").filter(F.col("tb") >= F.col("ta")).collect()
    days = {}
    for r in rows:
        # a start's partners are the ones after it in (start, operator) order
        if r["tb"] == r["ta"] and index[r["b"]] < index[r["a"]]:
            continue
        x, y = (r["a"], r["b"]) if index[r["a"]] < index[r["b"]] else (r["b"], r["a"])
        days.setdefault((x, y), []).append(r["day"])
    for (x, y), d in days.items():
        d.sort()
        if len(d) >= max(cc["sync_days"], 1):
            p = pair(x, y)
            p.counts["shift-sync"] = len(d)
            p.examples["shift-sync"] = d[:5]


def shared_groups(pair, conv, index, mx, cc):
    """Chat groups both fed with at least `group_min_conversions` conversions each."""
    if conv is None:
        return
    fed = {}
    for r in conv.groupBy("group_id", "operator_id").agg(F.count(F.lit(1)).alias("n")).collect():
        if r["operator_id"] in index and r["group_id"] is not None and r["n"] >= cc["group_min_conversions"]:
            fed.setdefault(r["group_id"], []).append(r["operator_id"])
    by_pair = {}
    for g in sorted(fed, key=text_value):
        members = sorted(fed[g], key=index.get)
        if not (2 <= len(members) <= mx):
            continue
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                by_pair.setdefault((a, b), []).append(g)
    for (a, b), gs in by_pair.items():
        if len(gs) >= max(cc["shared_groups"], 1):
            p = pair(a, b)
            p.counts["shared-group"] = len(gs)
            p.examples["shared-group"] = gs[:5]


def monitoring(pair, cdr, ops, index, cc):
    """Who listened in on whom (links.rs `monitoring`): spy legs, and brief internal calls into at
    least `brief_call_targets` operators' seats on a day."""
    has_mon = cdr.filter(F.col("monitored").isNotNull()).limit(1).count() > 0
    spied = F.col("monitored") if has_mon else F.lit(None).cast("string")
    rows = (
        cdr.filter(spied.isNotNull() | (F.col("direction") == "internal"))
        .select(
            "operator_id",
            F.coalesce(spied, F.col("callee")).alias("target"),
            "day",
            "start_us",
            F.coalesce("talk_s", F.lit(0)).alias("talk_s"),
            F.coalesce("ref", F.lit("")).alias("ref"),
            spied.isNotNull().alias("spy"),
        )
        .filter(F.col("target").isNotNull())
        .collect()
    )
    listens = sorted(rows, key=lambda r: (index[r["operator_id"]], r["start_us"], r["ref"]))

    def brief(r):
        return (
            not r["spy"]
            and 0 < r["talk_s"] <= cc["brief_call_seconds"]
            and r["target"] in index
            and r["target"] != r["operator_id"]
        )

    reach = {}
    for r in listens:
        if brief(r):
            reach.setdefault((r["operator_id"], r["day"]), set()).add(r["target"])
    m = {}
    for r in listens:
        if r["spy"]:
            how = "spy"
        elif brief(r) and len(reach[(r["operator_id"], r["day"])]) >= cc["brief_call_targets"]:
            how = "brief-calls"
        else:
            continue
        key = (r["operator_id"], r["target"], how)
        e = m.get(key)
        if e is None:
            e = m[key] = {
                "listener": r["operator_id"],
                "target": r["target"],
                "how": how,
                "days": [],
                "sessions": 0,
                "listen_s": 0,
                "first_us": r["start_us"],
                "last_us": r["start_us"],
                "refs": [],
            }
        e["sessions"] += 1
        e["listen_s"] += r["talk_s"]
        e["first_us"] = min(e["first_us"], r["start_us"])
        e["last_us"] = max(e["last_us"], r["start_us"])
        if r["day"] not in e["days"]:
            e["days"].append(r["day"])
        if len(e["refs"]) < 5:
            e["refs"].append(r["ref"])
    out = [m[k] for k in sorted(m)]
    for mo in out:
        a, b = mo["listener"], mo["target"]
        if a in index and b in index and a != b:
            p = pair(a, b)
            p.counts["monitoring"] += mo["sessions"]
            if len(p.examples["monitoring"]) < 5:
                p.examples["monitoring"].append(f"{a} listened to {b} ({mo['sessions']} session(s), {mo['how']})")
    return out


def judge(pairs, ops, index, clis, shifts, monitors, findings, run_profiles, cc, pay_cfg, tz):
    keys = sorted(pairs, key=lambda k: (index[k[0]], index[k[1]]))
    parent = {}

    def find(x):
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    linked = set()
    for k in keys:
        if pairs[k].strength(cc) >= cc["min_strength"]:
            ra, rb = find(k[0]), find(k[1])
            if ra != rb:
                parent[max(ra, rb, key=index.get)] = min(ra, rb, key=index.get)
            linked.update(k)
    by_root = {}
    for o in sorted(linked, key=index.get):
        by_root.setdefault(find(o), []).append(o)
    crews = [{"id": f"crew-{m[0]}", "members": m} for m in by_root.values()]
    crews.sort(key=lambda c: (-len(c["members"]), c["id"]))
    crew_of = {m: i for i, c in enumerate(crews) for m in c["members"]}
    # pay per operator from this run's day profiles
    pay = pay_days(run_profiles, pay_cfg)

    def low_high(o):
        d, c = pay.get(o, (0, 0))
        return d, c, d * pay_cfg["day_rate"] + c * pay_cfg["commission"][0], d * pay_cfg["day_rate"] + c * pay_cfg["commission"][1]

    flagged = {}
    for f in findings:
        if f["operator_id"] is not None and f["score"] >= cc["min_member_score"] and f["rule"] in cc["diversion_rules"]:
            flagged.setdefault(f["operator_id"], set()).add(f["rule"])
    evident = [(a, b, pairs[(a, b)], pairs[(a, b)].kinds(cc)) for a, b in keys if pairs[(a, b)].kinds(cc)]
    per = [{"by_kind": dict.fromkeys(KINDS, 0), "links": [], "groups": set(), "clis": {}, "days": [], "seats": set()} for _ in crews]
    for i, (a, b, p, kinds) in enumerate(evident):
        if a in crew_of and crew_of.get(b) == crew_of[a]:
            c = per[crew_of[a]]
            c["links"].append(i)
            for k in kinds:
                c["by_kind"][k] += 1
                if k == "shared-group":
                    c["groups"].update(p.examples["shared-group"])
    members = [m for c in crews for m in c["members"]]
    if members:
        for r in clis.filter(F.col("operator_id").isin(members)).select("caller_num", "operator_id").distinct().collect():
            per[crew_of[r["operator_id"]]]["clis"].setdefault(r["caller_num"], set()).add(r["operator_id"])
        for r in shifts.filter(F.col("operator_id").isin(members)).groupBy("operator_id").agg(
            F.min("day").alias("lo"), F.max("day").alias("hi")
        ).collect():
            per[crew_of[r["operator_id"]]]["days"] += [r["lo"], r["hi"]]
    for mo in monitors:
        if mo["listener"] in crew_of:
            per[crew_of[mo["listener"]]]["seats"].add(mo["listener"])

    def flagged_members(c):
        return [f"{m} ({', '.join(sorted(flagged[m]))})" for m in c["members"] if m in flagged]

    def shared_clis(i):
        v = sorted(((len(s), c) for c, s in per[i]["clis"].items() if len(s) >= 2), key=lambda x: (-x[0], x[1]))
        return [f"+{c}" for _, c in v]

    def crew_pay(c):
        t = [0, 0, 0.0, 0.0]
        for m in c["members"]:
            d, cv, lo, hi = low_high(m)
            t[0] += d
            t[1] += cv
            t[2] += lo
            t[3] += hi
        return t

    crews_rows, out = [], []
    for i, c in enumerate(crews):
        pc = per[i]
        lo = min(pc["days"]) if pc["days"] else ""
        hi = max(pc["days"]) if pc["days"] else ""
        days, conv, plo, phi = crew_pay(c)
        fm = flagged_members(c)
        crews_rows.append(
            {
                "crew_id": c["id"],
                "size": len(c["members"]),
                "members": ";".join(c["members"]),
                **{COLUMN[k]: pc["by_kind"][k] for k in KINDS},
                "first_day": lo,
                "last_day": hi,
                "flagged_members": ";".join(fm),
                "monitoring_seats": ";".join(sorted(pc["seats"])),
                "shared_clis": ";".join(shared_clis(i)),
                "groups": ";".join(sorted(pc["groups"])),
                "pay_days": days,
                "conversions": conv,
                "est_earnings_low": rust_round(plo, 2),
                "est_earnings_high": rust_round(phi, 2),
                "currency": pay_cfg["currency"],
            }
        )
        if len(fm) < cc["min_flagged_members"]:
            continue
        score = rust_round(min(0.5 + 0.1 * len(fm), 1.0), 2)
        kinds = [f"{pc['by_kind'][k]} {k}" for k in KINDS if pc["by_kind"][k] > 0]
        seats = sorted(pc["seats"])
        monitored = f"; monitored by {', '.join(seats)}" if seats else ""
        cur = pay_cfg["currency"]
        summary = (
            f"Crew {c['id']} of {len(c['members'])} operators tied by {', '.join(kinds)} links; {len(fm)} of them "
            f"flagged for diversion{monitored}; estimated pay {plo:.0f}-{phi:.0f} {cur} over {days} paid day(s) and "
            f"{conv} conversion(s)."
        )
        links = []
        for j in pc["links"][:20]:
            a, b, p, ks = evident[j]
            links.append(
                {
                    "from": a,
                    "to": b,
                    "kinds": ks,
                    "strength": rust_round(p.strength(cc), 2),
                    "evidence": ["; ".join(p.examples[k]) for k in ks],
                }
            )
        evidence = {
            "crew_id": c["id"],
            "members": c["members"],
            "flagged_members": fm,
            "links_by_kind": {k: pc["by_kind"][k] for k in sorted(KINDS)},
            "monitoring_seats": seats,
            "shared_clis": shared_clis(i)[:20],
            "groups": sorted(pc["groups"]),
            "first_day": lo,
            "last_day": hi,
            "earnings": {
                "currency": cur,
                "pay_days": days,
                "conversions": conv,
                "low": rust_round(plo, 2),
                "high": rust_round(phi, 2),
                "basis": "estimate from [rules.crew.pay]",
            },
            "links": links,
        }
        nxt = (date.fromisoformat(hi) + timedelta(days=1)).isoformat()
        out.append(finding("crew", None, c["id"], day_start(lo, tz), day_start(nxt, tz), score, summary, evidence))
    links_rows = []
    for a, b, p, ks in evident:
        s = p.strength(cc)
        same = a in crew_of and crew_of.get(b) == crew_of[a]
        for k in ks:
            links_rows.append(
                {
                    "from": a,
                    "to": b,
                    "kind": k,
                    "weight": p.counts[k],
                    "strength": rust_round(s, 2),
                    "strong": s >= cc["min_strength"],
                    "crew_id": crews[crew_of[a]]["id"] if same else "",
                    "evidence": "; ".join(p.examples[k]),
                }
            )
    mon_rows = [
        {
            "listener": mo["listener"],
            "target": mo["target"],
            "how": mo["how"],
            "days": len(mo["days"]),
            "sessions": mo["sessions"],
            "listen_min": rust_round(mo["listen_s"] / 60.0, 1),
            "crew_id": crews[crew_of[mo["listener"]]]["id"] if mo["listener"] in crew_of else "",
            "refs": ";".join(mo["refs"]),
            "first": local_seconds(mo["first_us"], tz),
            "last": local_seconds(mo["last_us"], tz),
            "first_us": mo["first_us"],
            "last_us": mo["last_us"],
        }
        for mo in monitors
    ]
    crew_id = {m: crews[i]["id"] for m, i in crew_of.items()}
    return out, crews_rows, links_rows, mon_rows, crew_id
