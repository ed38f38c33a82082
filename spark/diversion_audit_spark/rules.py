"""The day rules on DataFrames: each function mirrors one file of src/rules/ (its thresholds,
scores, windows and summaries) and returns (findings, per-operator metrics, day facts).

Aggregation runs on the cluster; only what a finding shows (a few rows per finding) reaches the
driver, where its sentence and evidence are written as the native rule writes them."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from .prepare import US, rust_round

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def utc(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


def local(us: int, tz: str) -> str:
    return utc(us).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def local_day(us: int, tz: str) -> str:
    return utc(us).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d")


def severity(score: float) -> str:
    if score >= 0.8:
        return "high"
    if score >= 0.6:
        return "medium"
    if score >= 0.4:
        return "low"
    return "info"


def finding(rule, op, subject, start_us, end_us, score, summary, evidence, fact=None):
    return {
        "rule": rule,
        "severity": severity(score),
        "operator_id": op,
        "subject": subject,
        "window_start_us": int(start_us),
        "window_end_us": int(end_us),
        "score": score,
        "summary": summary,
        "evidence": evidence,
        "fact": fact,
    }


def fmt(x: float, places: int) -> str:
    """Rust's `{:.N}` (the exact binary value rounded half to even, as Python's format)."""
    return f"{x:.{places}f}"


def first_seen(values) -> F.Column:
    """The distinct non-null `values` of a group in order of first use (by `rn`)."""
    return F.array_distinct(
        F.transform(
            F.array_sort(F.collect_list(F.when(values.isNotNull(), F.struct(F.col("rn").alias("o"), values.alias("v"))))),
            lambda s: s["v"],
        )
    )


def ordered(value, *order, n=None) -> F.Column:
    """A group's `value`s in the order of the `order` columns (ties in their order), the first `n`."""
    a = F.array_sort(F.collect_list(F.struct(*order, F.col(value).alias("_v"))))
    if n is not None:
        a = F.slice(a, 1, n)
    return F.transform(a, lambda s: s["_v"])


# ---------------------------------------------------------------- long-shift


def long_shift(cdr: DataFrame, shifts: DataFrame, cfg: dict, tz: str):
    c = cfg["rules"]["long_shift"]
    min_s = int(rust_round(c["min_talk_hours"] * 3600.0, 0))
    lo, hi = c["quota_band_hours"]
    flagged = shifts.filter(F.col("talk_s") >= min_s).withColumn(
        "flagged_days", F.size(F.collect_set("day").over(Window.partitionBy("operator_id")))
    )
    refs = (
        cdr.filter(F.col("srn") <= 20)
        .join(flagged.select("operator_id", "shift_no"), ["operator_id", "shift_no"], "left_semi")
        .groupBy("operator_id", "shift_no")
        .agg(ordered("ref", "srn").alias("refs"))
    )
    daily = (
        cdr.join(flagged.select("operator_id").distinct(), "operator_id", "left_semi")
        .groupBy("operator_id", "day")
        .agg(F.sum(F.coalesce("talk_s", F.lit(0))).alias("t"))
        .collect()
    )
    days_of = {}
    for r in daily:
        days_of.setdefault(r["operator_id"], {})[r["day"]] = rust_round(r["t"] / 3600.0, 2)
    out = []
    for r in flagged.join(refs, ["operator_id", "shift_no"], "left").collect():
        op, s, e = r["operator_id"], r["shift_start_us"], r["shift_end_us"]
        talk_h = r["talk_s"] / 3600.0
        days = r["flagged_days"]
        in_band = lo <= talk_h <= hi
        score = rust_round(min((0.7 if in_band else 0.5) + 0.1 * (days - 1), 1.0), 2)
        more = f"; {days} days with such shifts" if days > 1 else ""
        summary = (
            f"Operator {op} talked {fmt(talk_h, 1)} h in one shift from {local(s, tz)} to {local(e, tz)} "
            f"({r['calls']} calls, {r['answered']} answered, {fmt(r['occupancy'] * 100.0, 0)} % occupancy){more}."
        )
        evidence = {
            "talk_hours": rust_round(talk_h, 2),
            "span_hours": rust_round((e - s) / 3.6e9, 2),
            "calls": r["calls"],
            "answered": r["answered"],
            "distinct_callees": r["distinct_callees"],
            "occupancy": rust_round(r["occupancy"], 3),
            "in_quota_band": in_band,
            "flagged_days": days,
            "daily_talk_hours": dict(sorted(days_of.get(op, {}).items())),
            "calls_ref": list(r["refs"] or []),
        }
        fact = {"day": local_day(s, tz), "long_shift": True}
        out.append(finding("long-shift", op, None, s, e, score, summary, evidence, fact))
    metrics = shifts.groupBy("operator_id").agg(
        F.count(F.lit(1)).alias("shifts"),
        F.sum((F.col("talk_s") >= min_s).cast("long")).alias("flagged_shifts"),
        F.max("talk_h").alias("longest_shift_talk_h"),
    )
    return out, metrics


# ---------------------------------------------------------------- shared-seat


def shared_seat(cdr: DataFrame, shifts: DataFrame, cfg: dict, tz: str):
    c = cfg["rules"]["shared_seat"]
    cs, summed, union = F.col("concurrent_s"), F.col("talk_sum_s"), F.col("talk_s")
    flags = (cs.cast("double") >= c["min_concurrent_minutes"] * 60.0) | (
        (union > 0) & (summed.cast("double") >= F.lit(c["min_summed_ratio"]) * union.cast("double")) & (cs > 0)
    )
    shifts = shifts.withColumn("_shared", flags)
    flagged = shifts.filter("_shared")
    # the flagged shifts' talk intervals, for the overlapping calls' references (few shifts)
    t = F.col("talk_s")
    iv = (
        cdr.filter(t > 0)
        .join(flagged.select("operator_id", "shift_no"), ["operator_id", "shift_no"], "left_semi")
        .select(
            "operator_id",
            "shift_no",
            "rn",
            "ref",
            F.coalesce("answer_us", F.col("end_us") - t * US).alias("a"),
            (t * US).alias("len"),
        )
        .collect()
    )
    by_shift = {}
    for r in iv:
        if r["a"] is None:
            continue
        by_shift.setdefault((r["operator_id"], r["shift_no"]), []).append((r["a"], r["a"] + r["len"], r["rn"], r["ref"]))
    out = []
    for r in flagged.collect():
        op, s, e = r["operator_id"], r["shift_start_us"], r["shift_end_us"]
        p, u, s_, cs_ = r["peak_concurrent"], r["talk_s"], r["talk_sum_s"], r["concurrent_s"]
        at = r["peak_at_us"] if r["peak_at_us"] is not None else s
        score = rust_round(min(max(0.6 + 0.1 * (p - 2), 0.6), 1.0), 2)
        refs = overlapping_refs(by_shift.get((op, r["shift_no"]), []))
        summary = (
            f"Seat {op} carried up to {p} answered calls at once (first at {local(at, tz)}), {cs_ // 60} min at "
            f"two or more, between {local(s, tz)} and {local(e, tz)}: {fmt(s_ / 3600.0, 1)} h of summed talk in "
            f"{fmt(u / 3600.0, 1)} h of wall-clock talk. More than one person used this seat."
        )
        evidence = {
            "peak_concurrent": p,
            "peak_at": utc(at).isoformat(),
            "concurrent_minutes": rust_round(cs_ / 60.0, 1),
            "talk_summed_hours": rust_round(s_ / 3600.0, 2),
            "talk_wall_clock_hours": rust_round(u / 3600.0, 2),
            "calls": r["calls"],
            "overlapping_calls_ref": refs,
        }
        out.append(finding("shared-seat", op, None, s, e, score, summary, evidence))
    metrics = shifts.groupBy("operator_id").agg(
        F.max("peak_concurrent").alias("peak_concurrent_calls"),
        F.sum(F.col("_shared").cast("long")).alias("shared_seat_shifts"),
    )
    return out, metrics


def overlapping_refs(iv):
    """The references of a shift's calls whose talk overlaps another's, in start order (20)."""
    iv = sorted(iv, key=lambda x: (x[0], x[1], x[2]))
    hit = [False] * len(iv)
    max_end, max_k = None, 0
    for k, (a, b, _, _) in enumerate(iv):
        if max_end is not None and a < max_end:
            hit[k] = True
            hit[max_k] = True
        if max_end is None or b > max_end:
            max_end, max_k = b, k
    return [x[3] for x, h in zip(iv, hit) if h and x[3] is not None][:20]


# ---------------------------------------------------------------- spoofed-foreign-cli


def spoofed(cdr: DataFrame, cfg: dict, st: dict, has_ip_country: bool):
    c = cfg["rules"]["spoofed_foreign_cli"]
    home = st["home_region"]
    notes = []
    if not has_ip_country and not c["domestic_campaigns"] and not c["domestic_trunks"]:
        notes.append(
            "spoofed-foreign-cli: no IP-country data (--ip-country) and no domestic campaigns or trunks "
            "configured: the origin of calls is unknown, so spoofing was not assessed"
        )
        return [], None, notes
    camp, trunk = c["domestic_campaigns"] or [""], c["domestic_trunks"] or [""]
    origin = (
        F.when(F.col("ip_country") == home, F.lit("ip:" + home))
        .when(F.lit(bool(c["domestic_campaigns"])) & F.col("campaign").isin(camp), F.concat(F.lit("campaign:"), "campaign"))
        .when(F.lit(bool(c["domestic_trunks"])) & F.col("trunk").isin(trunk), F.concat(F.lit("trunk:"), "trunk"))
    )
    rows = (
        cdr.filter(F.col("caller_country").isNotNull() & (F.col("caller_country") != home) & (F.col("direction") == "outbound"))
        .withColumn("origin", origin)
        .filter(F.col("origin").isNotNull() & F.col("day").isNotNull())
    )
    num = F.col("caller_num")
    groups = rows.groupBy("operator_id", "day").agg(
        F.count(F.lit(1)).alias("calls"),
        # distinct caller numbers, a missing one counting once
        (F.countDistinct(num) + F.max(num.isNull().cast("int"))).alias("k"),
        F.collect_set(num).alias("nums"),
        F.min("start_us").alias("first_us"),
        F.max("end_us").alias("last_us"),
        first_seen(num).alias("clis"),
        first_seen(F.col("caller_country")).alias("countries"),
        first_seen(F.col("origin")).alias("origins"),
        first_seen(F.when(F.col("caller_valid") == F.lit(False), num)).alias("invalid"),
        ordered("ref", "rn", n=20).alias("refs"),
    )
    out = []
    for g in groups.filter(F.col("calls") >= c["min_calls"]).collect():
        op, n, k = g["operator_id"], g["calls"], g["k"]
        clis = [f"+{x}" for x in g["clis"]]
        invalid = [f"+{x}" for x in g["invalid"]]
        score = 0.6 + (0.2 if n >= 20 else 0) + (0.1 if invalid else 0) + (0.1 if k >= 3 else 0)
        score = rust_round(min(score, 1.0), 2)
        inv = f"; {len(invalid)} of them fail number validation" if invalid else ""
        summary = (
            f"Operator {op} showed {k} foreign caller ID(s) ({', '.join(g['countries'])}) on {n} calls on {g['day']} "
            f"while the calls came from home ({', '.join(g['origins'])}){inv}."
        )
        evidence = {
            "day": g["day"],
            "calls": n,
            "distinct_clis": k,
            "clis": clis,
            "countries_shown": list(g["countries"]),
            "origin": list(g["origins"]),
            "invalid_clis": invalid,
            "first_call": local(g["first_us"], st["tz"]),
            "last_call": local(g["last_us"], st["tz"]),
            "calls_ref": list(g["refs"]),
        }
        subject = " ".join(clis) if k == 1 else None
        fact = {"day": g["day"], "spoofed_calls": n}
        out.append(finding("spoofed-foreign-cli", op, subject, g["first_us"], g["last_us"], score, summary, evidence, fact))
    metrics = rows.groupBy("operator_id").agg(
        F.count(F.lit(1)).alias("spoofed_calls"),
        (F.countDistinct(num) + F.max(num.isNull().cast("int"))).alias("distinct_foreign_clis"),
    )
    return out, metrics, notes


# ---------------------------------------------------------------- foreign-cli-fanout


def fanout(cdr: DataFrame, cfg: dict, st: dict):
    mn = cfg["rules"]["foreign_cli_fanout"]["fanout_min_callees"]
    home, prefix = st["home_region"], st["home_prefix"].lstrip("+")
    rows = cdr.filter(
        F.col("caller_country").isNotNull()
        & (F.col("caller_country") != home)
        & (F.col("direction") == "outbound")
        & F.col("callee_num").cast("string").startswith(prefix)
        & F.col("day").isNotNull()
    )
    groups = (
        rows.groupBy("caller_num", "day")
        .agg(
            F.countDistinct("callee_num").alias("callees"),
            F.count(F.lit(1)).alias("calls"),
            F.min(F.struct("operator_id", "rn", "caller_country", "caller_valid")).alias("first"),
            F.array_sort(F.collect_set("operator_id")).alias("operators"),
            F.array_sort(F.collect_set(F.coalesce("ip_country", F.lit("unknown")))).alias("origins"),
            F.min("start_us").alias("first_us"),
            F.max("end_us").alias("last_us"),
            ordered("ref", "start_us", "operator_id", "rn", n=20).alias("refs"),
        )
        .filter(F.col("callees") >= mn)
    )
    out = []
    for g in groups.collect():
        n = g["callees"]
        origins = list(g["origins"])
        valid = bool(g["first"]["caller_valid"])
        score = 0.4 + (0.3 if home in origins else 0) + (0.1 if not valid else 0) + (0.1 if n >= 4 * mn else 0)
        score = rust_round(min(score, 1.0), 2)
        cli = f"+{g['caller_num']}" if g["caller_num"] is not None else ""
        summary = (
            f"Foreign caller ID {cli} ({g['first']['caller_country'] or '?'}) reached {n} home callees on {g['day']} "
            f"through {len(g['operators'])} operator(s), calling from {', '.join(origins)}."
        )
        evidence = {
            "day": g["day"],
            "distinct_callees": n,
            "calls": g["calls"],
            "operators": list(g["operators"]),
            "ip_countries": origins,
            "cli_valid": valid,
            "calls_ref": list(g["refs"]),
        }
        out.append(finding("foreign-cli-fanout", None, cli, g["first_us"] or 0, g["last_us"] or 0, score, summary, evidence))
    return out


# ---------------------------------------------------------------- group-invite-conversion


def conversion(cdr: DataFrame, joins, cfg: dict, tz: str):
    c = cfg["rules"]["group_invite_conversion"]
    dirs = ["outbound", "inbound"] if c["include_inbound"] else ["outbound"]
    answered = cdr.filter(F.col("answered") & F.col("direction").isin(dirs) & F.col("callee_num").isNotNull())
    base = answered.groupBy("operator_id").agg(F.countDistinct("callee_num").alias("answered_callees"))
    if joins is None:
        note = "group-invite-conversion: no join log (--joins): conversions not assessed"
        return [], base, [], None, None, [note]
    window = c["conversion_window_minutes"] * 60 * US
    calls = answered.select(
        "operator_id",
        "callee_num",
        F.coalesce("answer_us", "start_us").alias("ans_us"),
        "end_us",
        "ref",
        "rn",
    )
    j = joins.select("group_id", "member_e164", "member_num", "joined_us")
    pairs = j.join(calls, j.member_num == calls.callee_num).filter(
        (F.col("joined_us") >= F.col("ans_us")) & (F.col("joined_us") <= F.col("end_us") + window)
    )
    # the last call before each join (latest end; ties: the later in frame order)
    last = Window.partitionBy("group_id", "member_e164", "joined_us").orderBy(
        F.col("end_us").desc(), F.col("operator_id").desc(), F.col("rn").desc()
    )
    conv = (
        pairs.withColumn("_k", F.row_number().over(last))
        .filter("_k = 1")
        .select(
            "operator_id",
            "group_id",
            "member_e164",
            F.col("end_us").alias("call_end_us"),
            "joined_us",
            # times the reciprocal, as Polars evaluates a division by a float literal (the native
            # scan's minutes differ from a true division in the last bit, which shows at 11.45)
            ((F.col("joined_us") - F.col("end_us")).cast("double") * F.lit(1.0 / 60e6)).alias("minutes_to_join"),
            F.col("ref").alias("call"),
        )
        .cache()
    )
    per_op = (
        conv.groupBy("operator_id")
        .agg(
            F.countDistinct("member_e164").alias("converted"),
            F.percentile(F.col("minutes_to_join"), 0.5).alias("median_minutes"),
            # joins at one second in member then group order, as the native rule sorts them
            ordered("group_id", "joined_us", "member_e164", "group_id").alias("groups_seq"),
            F.min("joined_us").alias("first_us"),
            F.max("joined_us").alias("last_us"),
            ordered("call", "joined_us", "member_e164", "group_id", n=20).alias("refs"),
        )
        .join(base, "operator_id", "left")
        .withColumn("rate", F.col("converted").cast("double") / F.col("answered_callees").cast("double"))
    )
    out = []
    for r in per_op.collect():
        k, n, rate = r["converted"], r["answered_callees"], r["rate"] or 0.0
        if k < c["min_conversions"] or rate < c["min_conversion_rate"]:
            continue
        score = rust_round(min(0.6 + (0.2 if k >= 10 else 0) + (0.1 if rate >= 0.05 else 0), 1.0), 2)
        groups = list(dict.fromkeys(r["groups_seq"]))
        op = r["operator_id"]
        median = r["median_minutes"] or 0.0
        summary = (
            f"Operator {op} had {k} of {n} answered callees ({fmt(rate * 100.0, 1)} %) join chat group(s) "
            f"{', '.join(groups)} a median {fmt(median, 0)} minutes after the call."
        )
        evidence = {
            "answered_callees": n,
            "converted_callees": k,
            "rate": rust_round(rate, 4),
            "median_minutes_to_join": rust_round(median, 1),
            "groups": groups,
            "calls_ref": list(r["refs"]),
        }
        out.append(finding("group-invite-conversion", op, None, r["first_us"], r["last_us"], score, summary, evidence))
    metrics = (
        base.join(per_op.select("operator_id", F.col("converted").alias("conversions")), "operator_id", "left")
        .fillna(0, subset=["conversions"])
        .withColumn("conversion_rate", F.col("conversions").cast("double") / F.col("answered_callees").cast("double"))
    )
    # each conversion counts for the local day its call ended
    facts = [
        {"operator_id": r["operator_id"], "day": local_day(r["call_end_us"], tz), "conversions": 1}
        for r in conv.select("operator_id", "call_end_us").collect()
    ]
    groups_tbl = (
        conv.groupBy("group_id")
        .agg(
            F.countDistinct("member_e164").alias("converted_members"),
            F.countDistinct("operator_id").alias("feeding_operators_n"),
            ordered("operator_id", "joined_us", "member_e164", "operator_id").alias("_ops"),
            F.min("joined_us").alias("first_join_us"),
            F.max("joined_us").alias("last_join_us"),
        )
        .withColumn("feeding_operators", F.array_join(F.array_distinct("_ops"), " "))
        .drop("_ops")
        .orderBy(F.col("converted_members").desc(), "group_id")
    )
    return out, metrics, facts, conv, groups_tbl, []


# ---------------------------------------------------------------- cli-rotation


def cli_rotation(cdr: DataFrame, cfg: dict, tz: str):
    c = cfg["rules"]["cli_rotation"]
    key = ["operator_id", "shift_no"]
    rows = cdr.filter((F.col("direction") == "outbound") & F.col("caller_num").isNotNull())
    w = Window.partitionBy(*key).orderBy("rn")
    rows = rows.withColumn("_prev", F.lag("caller_num").over(w))
    per = rows.groupBy(*key).agg(
        F.count(F.lit(1)).alias("calls"),
        F.sum((F.col("_prev").isNotNull() & (F.col("_prev") != F.col("caller_num"))).cast("long")).alias("changes"),
        F.min("start_us").alias("start_us"),
        F.max("start_us").alias("end_us"),
        F.countDistinct("caller_num").alias("distinct"),
        ordered("ref", "rn", n=5).alias("refs"),
    )
    per = per.withColumn(
        "share", F.col("changes").cast("double") / F.greatest(F.col("calls") - 1, F.lit(1)).cast("double")
    )
    judged = F.col("calls") >= c["min_calls"]
    rotating = judged & (F.col("distinct") >= c["min_distinct"]) & (F.col("share") >= c["min_change_share"])
    per = per.withColumn("_judged", judged).withColumn("_rot", rotating)
    metrics = per.groupBy("operator_id").agg(
        F.coalesce(F.max(F.when(F.col("_judged"), F.col("distinct"))), F.lit(0)).alias("max_shift_clis"),
        F.coalesce(F.max(F.when(F.col("_judged"), F.col("share"))), F.lit(0.0)).alias("cli_change_share"),
        F.sum(F.col("_rot").cast("long")).alias("rotating_shifts"),
    )
    hits = per.filter("_rot")
    pools = (
        rows.join(hits.select(*key), key, "left_semi")
        .groupBy(*key, "caller_num")
        .agg(F.count(F.lit(1)).alias("n"))
        .groupBy(*key)
        .agg(F.collect_list(F.struct("caller_num", "n")).alias("pool"))
    )
    by_op = {}
    for r in hits.join(pools, key).orderBy(*key).collect():
        pool = sorted(((p["caller_num"], p["n"]) for p in r["pool"]), key=lambda p: (-p[1], p[0]))
        by_op.setdefault(r["operator_id"], []).append((r, pool))
    out = []
    for op, hs in sorted(by_op.items()):
        worst = None
        for h in hs:  # max_by: the last of equal maxima
            if worst is None or (len(h[1]), h[0]["share"]) >= (len(worst[1]), worst[0]["share"]):
                worst = h
        allpool = sorted({p[0] for _, pool in hs for p in pool})
        score = rust_round(min(0.5 + 0.05 * min(len(worst[1]), 10) + 0.05 * min(len(hs) - 1.0, 4.0), 1.0), 2)
        w0 = worst[0]
        summary = (
            f"Seat {op} showed {len(worst[1])} caller IDs over {w0['calls']} outbound calls from {local(w0['start_us'], tz)} "
            f"to {local(w0['end_us'], tz)}, changing on {fmt(w0['share'] * 100.0, 0)} % of calls ({len(hs)} rotating "
            f"shift(s), {len(allpool)} caller IDs in all)."
        )
        shifts_ev = [
            {
                "start": local(r["start_us"], tz),
                "calls": r["calls"],
                "distinct_clis": len(pool),
                "change_share": rust_round(r["share"], 3),
                "pool": [{"cli": f"+{n}", "calls": k} for n, k in pool[:12]],
                "calls_ref": list(r["refs"]),
            }
            for r, pool in hs[:5]
        ]
        evidence = {
            "rotating_shifts": len(hs),
            "distinct_clis": len(allpool),
            "pool": [f"+{n}" for n in allpool[:50]],
            "shifts": shifts_ev,
        }
        first = min(r["start_us"] for r, _ in hs)
        last = max(r["end_us"] for r, _ in hs)
        fact = {"day": local_day(w0["start_us"], tz)}
        out.append(finding("cli-rotation", op, None, first, last, score, summary, evidence, fact))
    return out, metrics
