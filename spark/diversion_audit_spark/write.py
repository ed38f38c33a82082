"""The native scan's files from the Spark job's results (docs/schema.md): the same names, columns
and CSV conventions (spreadsheet-safe cells, local times), Parquet beside the CSV for the big
tables, and dossiers.json for `diversion-audit report --from DIR`."""

import csv
import json
import os
import tempfile

from pyspark.sql import functions as F

from .crossday import REPORT_ORDER, pay_days
from .prepare import even_round, rust_round
from .rules import local, utc

# conversions.csv and groups.csv, as the native writer orders them (`_us` columns last, as local times)
CONVERSION_COLUMNS = ["operator_id", "group_id", "member_e164", "minutes_to_join", "call", "call_end", "joined"]
GROUP_COLUMNS = ["group_id", "converted_members", "feeding_operators_n", "feeding_operators", "first_join", "last_join"]

SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3}

BASE = [
    ("operator_id", "str", 0),
    ("risk_score", "f", 3),
    ("rules_hit", "str", 0),
    ("days_active", "i", 0),
    ("calls", "i", 0),
    ("answered_calls", "i", 0),
    ("talk_h_total", "f", 2),
    ("mean_daily_talk_h", "f", 2),
    ("calls_outbound", "i", 0),
    ("calls_inbound", "i", 0),
    ("calls_internal", "i", 0),
    ("talk_h_outbound", "f", 2),
    ("talk_h_inbound", "f", 2),
    ("talk_h_internal", "f", 2),
    # the rules' metrics, in registry order
    ("shifts", "i", 0),
    ("flagged_shifts", "i", 0),
    ("longest_shift_talk_h", "f", 2),
    ("peak_concurrent_calls", "i", 0),
    ("shared_seat_shifts", "i", 0),
    ("spoofed_calls", "i", 0),
    ("distinct_foreign_clis", "i", 0),
    ("answered_callees", "i", 0),
    ("conversions", "i", 0),
    ("conversion_rate", "f", 4),
    ("max_shift_clis", "i", 0),
    ("cli_change_share", "f", 3),
    ("rotating_shifts", "i", 0),
    ("crew_id", "str", 0),
    ("pay_days", "i", 0),
    ("est_earnings_low", "f", 2),
    ("est_earnings_high", "f", 2),
]


def atomic(path, mode="w"):
    """A temporary file beside `path`, renamed onto it when the block ends without error."""

    class _A:
        def __enter__(self):
            d = os.path.dirname(path) or "."
            os.makedirs(d, exist_ok=True)
            fd, self.tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path), suffix=".tmp")
            self.f = os.fdopen(fd, mode, newline="" if "b" not in mode else None, **({} if "b" in mode else {"encoding": "utf-8"}))
            return self.f

        def __exit__(self, et, e, tb):
            self.f.close()
            if et is None:
                os.replace(self.tmp, path)
            else:
                os.unlink(self.tmp)
            return False

    return _A()


def cell(v):
    """report/csv_safe.rs: a leading `'` on cells that a spreadsheet would run as a formula."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


def text(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return cell(v) if isinstance(v, str) else v


def json_file(path, value):
    with atomic(path) as f:
        json.dump(value, f, ensure_ascii=False, indent=2, sort_keys=True)
        f.write("\n")


def sort_findings(findings):
    order = {r: i for i, r in enumerate(REPORT_ORDER)}
    return sorted(
        findings,
        key=lambda f: (
            -SEVERITY_RANK[f["severity"]],
            -f["score"],
            order[f["rule"]],
            (f["operator_id"] is not None, f["operator_id"] or ""),
            f["window_start_us"],
            (f["subject"] is not None, f["subject"] or ""),
        ),
    )


def rfc3339(us):
    return utc(us).strftime("%Y-%m-%dT%H:%M:%SZ")


def evidence_text(ev):
    return json.dumps(ev, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def findings(out, fs, spark):
    head = ["rule", "severity", "operator_id", "subject", "window_start", "window_end", "score", "summary", "evidence"]
    with atomic(os.path.join(out, "findings.csv")) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(head)
        for x in fs:
            w.writerow(
                [
                    x["rule"],
                    x["severity"],
                    text(x["operator_id"] or ""),
                    text(x["subject"] or ""),
                    rfc3339(x["window_start_us"]),
                    rfc3339(x["window_end_us"]),
                    f"{x['score']:.2f}",
                    text(x["summary"]),
                    evidence_text(x["evidence"]),
                ]
            )
    with atomic(os.path.join(out, "findings.jsonl")) as f:
        for x in fs:
            rec = {
                "rule": x["rule"],
                "severity": x["severity"],
                "operator_id": x["operator_id"],
                "subject": x["subject"],
                "window_start": rfc3339(x["window_start_us"]),
                "window_end": rfc3339(x["window_end_us"]),
                "score": x["score"],
                "summary": x["summary"],
                "evidence": x["evidence"],
            }
            f.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
    rows = [
        (
            x["rule"], x["severity"], x["operator_id"], x["subject"], x["window_start_us"], x["window_end_us"],
            float(x["score"]), x["summary"], evidence_text(x["evidence"]),
        )
        for x in fs
    ]
    schema = (
        "rule string, severity string, operator_id string, subject string, window_start_us long, "
        "window_end_us long, score double, summary string, evidence string"
    )
    spark.createDataFrame(rows, schema).coalesce(1).write.mode("overwrite").parquet(os.path.join(out, "findings.parquet"))


def operators(spark, cdr, shifts, metrics, fs, run_profiles, cfg, crew_id):
    """operators.csv's rows (dicts), highest risk first (pipeline/totals.rs)."""
    d = F.col("direction")
    talk = F.coalesce("talk_s", F.lit(0))
    totals = cdr.groupBy("operator_id").agg(
        F.countDistinct("day").alias("days_active"),
        F.count(F.lit(1)).alias("calls"),
        F.sum(F.col("answered").cast("long")).alias("answered_calls"),
        *[F.sum((d == k).cast("long")).alias(f"calls_{k}") for k in ("outbound", "inbound", "internal")],
        *[(F.sum(F.when(d == k, talk).otherwise(0)) / 3600.0).alias(f"talk_h_{k}") for k in ("outbound", "inbound", "internal")],
    )
    union = shifts.groupBy("operator_id").agg((F.sum("talk_s") / 3600.0).alias("talk_h_total"))
    df = totals.join(union, "operator_id", "left")
    for m in metrics:
        df = df.join(m, "operator_id", "left")
    rows = {r["operator_id"]: r.asDict() for r in df.collect()}
    best = {}
    for f in fs:
        if f["operator_id"] is not None:
            b = best.setdefault(f["operator_id"], {})
            b[f["rule"]] = max(b.get(f["rule"], 0.0), f["score"])
    pay = cfg["rules"]["crew"]["pay"]
    pays = pay_days(run_profiles, pay)
    out = []
    for op, r in rows.items():
        r = dict(r)
        r["mean_daily_talk_h"] = (r.get("talk_h_total") or 0.0) / r["days_active"] if r["days_active"] else float("nan")
        if op in best:
            prod = 1.0
            for s in best[op].values():
                prod *= 1.0 - s
            r["risk_score"] = rust_round(1.0 - prod, 3)
            r["rules_hit"] = ";".join(x for x in REPORT_ORDER if x in best[op])
        r["crew_id"] = crew_id.get(op, "")
        days, conv = pays.get(op, (0, 0))
        r["pay_days"] = days
        r["est_earnings_low"] = days * pay["day_rate"] + conv * pay["commission"][0]
        r["est_earnings_high"] = days * pay["day_rate"] + conv * pay["commission"][1]
        row = {}
        for name, kind, places in BASE:
            v = r.get(name)
            if kind == "str":
                row[name] = v if v is not None else ""
            elif kind == "f":
                row[name] = even_round(float(v), places) if v is not None else 0.0
            else:
                row[name] = int(v) if v is not None else 0
        out.append(row)
    out.sort(key=lambda r: (-r["risk_score"], r["operator_id"]))
    return out


def table_both(out, name, rows):
    cols = [c for c, _, _ in BASE]
    with atomic(os.path.join(out, f"{name}.csv")) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([text(r[c]) for c in cols])
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.Table.from_pylist(rows) if rows else pa.table({c: [] for c in cols})
    tmp = os.path.join(out, f".{name}.parquet.tmp")
    pq.write_table(t, tmp)
    os.replace(tmp, os.path.join(out, f"{name}.parquet"))


def shifts(out, sh, cfg):
    min_s = int(rust_round(cfg["rules"]["long_shift"]["min_talk_hours"] * 3600.0, 0))
    table = sh.select(
        "operator_id",
        "day",
        F.date_format(F.timestamp_micros("shift_start_us"), "yyyy-MM-dd HH:mm:ss").alias("shift_start"),
        F.date_format(F.timestamp_micros("shift_end_us"), "yyyy-MM-dd HH:mm:ss").alias("shift_end"),
        (F.col("span_s") / 3600.0).alias("span_h"),
        "talk_h",
        "calls",
        "answered",
        "distinct_callees",
        "occupancy",
        "calls_outbound",
        "calls_inbound",
        "calls_internal",
        (F.col("talk_outbound_s") / 3600.0).alias("talk_outbound_h"),
        (F.col("talk_inbound_s") / 3600.0).alias("talk_inbound_h"),
        (F.col("talk_internal_s") / 3600.0).alias("talk_internal_h"),
        (F.col("talk_sum_s") / 3600.0).alias("talk_summed_h"),
        "peak_concurrent",
        (F.col("talk_s") >= min_s).alias("flagged"),
        "shift_start_us",
        "shift_end_us",
        "talk_s",
    ).orderBy("operator_id", "shift_start_us")
    table.write.mode("overwrite").parquet(os.path.join(out, "shifts.parquet"))
    # the CSV as the native writer rounds it (half to even, as Polars), streamed through the driver
    two = ["span_h", "talk_h", "talk_outbound_h", "talk_inbound_h", "talk_internal_h", "talk_summed_h"]
    cols = [c for c in table.columns if not c.endswith("_us") and c != "talk_s"]
    with atomic(os.path.join(out, "shifts.csv")) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        for r in table.toLocalIterator():
            vals = []
            for c in cols:
                v = r[c]
                if c in two:
                    v = even_round(v, 2)
                elif c == "occupancy":
                    v = even_round(v, 3)
                vals.append(text(v))
            w.writerow(vals)


def conversions(out, conv, groups, tz):
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)

    def loc(us):
        return utc(us).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if us is not None else ""

    cols = CONVERSION_COLUMNS
    with atomic(os.path.join(out, "conversions.csv")) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        rows = conv.orderBy("operator_id", "joined_us", "member_e164", "group_id").collect()
        for r in rows:
            w.writerow(
                [
                    text(r["operator_id"]), text(r["group_id"]), text(r["member_e164"]),
                    even_round(r["minutes_to_join"], 1), text(r["call"]), loc(r["call_end_us"]), loc(r["joined_us"]),
                ]
            )
    gcols = GROUP_COLUMNS
    with atomic(os.path.join(out, "groups.csv")) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(gcols)
        for r in groups.collect():
            w.writerow(
                [
                    text(r["group_id"]), r["converted_members"], r["feeding_operators_n"], text(r["feeding_operators"]),
                    loc(r["first_join_us"]), loc(r["last_join_us"]),
                ]
            )


def empty_conversions(out):
    for name, cols in [
        ("conversions", CONVERSION_COLUMNS),
        ("groups", GROUP_COLUMNS),
    ]:
        with atomic(os.path.join(out, f"{name}.csv")) as f:
            csv.writer(f, lineterminator="\n").writerow(cols)


def r2(x):
    return rust_round(x, 2)


def rows_csv(path, cols, rows):
    with atomic(path) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([text(r[c]) for c in cols])


def crew_tables(out, crews_rows, links_rows, mon_rows):
    """crews.csv, links.csv and monitoring.csv, in the native columns (rules/crew/mod.rs)."""
    crew_cols = (
        ["crew_id", "size", "members"]
        + ["links_" + k.replace("-", "_") for k in ("shared-cli", "shared-group", "lead-list", "same-ip", "shift-sync", "campaign", "monitoring")]
        + ["first_day", "last_day", "flagged_members", "monitoring_seats", "shared_clis", "groups", "pay_days", "conversions"]
        + ["est_earnings_low", "est_earnings_high", "currency"]
    )
    rows_csv(os.path.join(out, "crews.csv"), crew_cols, crews_rows)
    rows_csv(
        os.path.join(out, "links.csv"),
        ["from", "to", "kind", "weight", "strength", "strong", "crew_id", "evidence"],
        links_rows,
    )
    rows_csv(
        os.path.join(out, "monitoring.csv"),
        ["listener", "target", "how", "days", "sessions", "listen_min", "crew_id", "refs", "first", "last"],
        mon_rows,
    )


def crew_ref(op, crews_rows, mon_rows, tz):
    """A dossier's crew section (report/crews.rs `attach`)."""
    by = [m for m in mon_rows if m["target"] == op]
    of = [m for m in mon_rows if m["listener"] == op]

    def line(m):
        return monitor_line(m, tz)

    for c in crews_rows:
        ms = c["members"].split(";")
        if op in ms:
            return {"crew_id": c["crew_id"], "members": ms, "monitored_by": [line(m) for m in by], "monitors": [line(m) for m in of]}
    if by or of:
        return {"crew_id": "", "members": [], "monitored_by": [line(m) for m in by], "monitors": [line(m) for m in of]}
    return None


def crew_pages(crews_rows, links_rows, mon_rows, shift_rows, operators, fs, dossier_ops, cfg, tz):
    """The crew pages (report/crews.rs `pages`): the crews that are findings or hold an operator
    with a dossier; findings first, then by size."""
    crew_findings = {f["subject"]: f for f in fs if f["rule"] == "crew"}
    cur = cfg["rules"]["crew"]["pay"]["currency"]

    def pay(r):
        return {
            "pay_days": r["pay_days"],
            "conversions": r["conversions"],
            "low": r["est_earnings_low"],
            "high": r["est_earnings_high"],
            "currency": cur,
        }

    members_of = {r["operator_id"]: (r["rules_hit"], pay(r)) for r in operators}
    pages = []
    for c in crews_rows:
        ms = [m for m in c["members"].split(";") if m]
        f = crew_findings.get(c["crew_id"])
        if f is None and not any(m in dossier_ops for m in ms):
            continue
        mset = set(ms)
        links = {}
        for r in links_rows:
            if r["from"] in mset and r["to"] in mset:
                k = (r["from"], r["to"])
                kind = f"{r['kind']} ({r['weight']})"
                if k not in links:
                    links[k] = {"from": r["from"], "to": r["to"], "kinds": kind, "strength": r["strength"], "evidence": r["evidence"]}
                else:
                    links[k]["kinds"] += f", {kind}"
                    if not links[k]["evidence"]:
                        links[k]["evidence"] = r["evidence"]
        member_lines = []
        for m in ms:
            hit, p = members_of.get(m, ("", {"pay_days": 0, "conversions": 0, "low": 0.0, "high": 0.0, "currency": ""}))
            member_lines.append({"operator_id": m, "rules_hit": hit.replace(";", ", "), "flagged": bool(hit), "pay": {**p, "currency": c["currency"]}})
        pages.append(
            {
                "crew_id": c["crew_id"],
                "finding": f["summary"] if f else None,
                "severity": f["severity"] if f else None,
                "members": member_lines,
                "links": [links[k] for k in sorted(links)],
                "shared_clis": [x for x in c["shared_clis"].split(";") if x],
                "groups": [x for x in c["groups"].split(";") if x],
                "monitoring": [monitor_line(m, tz) for m in mon_rows if m["listener"] in mset],
                "first_day": c["first_day"],
                "last_day": c["last_day"],
                "pay": {
                    "pay_days": c["pay_days"],
                    "conversions": c["conversions"],
                    "low": c["est_earnings_low"],
                    "high": c["est_earnings_high"],
                    "currency": c["currency"],
                },
                "shifts": [
                    {
                        "operator_id": s["operator_id"],
                        "start_us": s["shift_start_us"],
                        "end_us": s["shift_end_us"],
                        "talk_h": r2(s["talk_s"] / 3600.0),
                    }
                    for s in shift_rows
                    if s["operator_id"] in mset
                ],
            }
        )
    pages.sort(key=lambda p: (p["finding"] is None, -len(p["members"]), p["crew_id"]))
    return pages


def monitor_line(m, tz):
    return {
        "listener": m["listener"],
        "target": m["target"],
        "how": m["how"],
        "sessions": m["sessions"],
        "listen_min": m["listen_min"],
        "first": local(m["first_us"], tz),
        "last": local(m["last_us"], tz),
        "refs": m["refs"].replace(";", " "),
    }


def dossiers(cdr, shift_rows, fs, operators, conv, cfg, st, mans, crews_rows, links_rows, mon_rows):
    """dossiers.json (src/report/mod.rs `Report`): a dossier per operator a finding names."""
    tz = st["tz"]
    ops = sorted({f["operator_id"] for f in fs if f["operator_id"] is not None})
    op_rows = {r["operator_id"]: r for r in operators}
    by_op = {}
    for op in ops:
        r = op_rows.get(op)
        if r is None:
            continue
        by_op[op] = {
            "operator_id": op,
            "risk_score": r["risk_score"],
            "rules_hit": [x for x in r["rules_hit"].split(";") if x],
            "findings": [],
            "shifts": [],
            "daily": [],
            "clis": [],
            "conversions": None,
            "calls": [],
            "crew": crew_ref(op, crews_rows, mon_rows, tz),
            "pay": {
                "pay_days": r["pay_days"],
                "conversions": r["conversions"],
                "low": r["est_earnings_low"],
                "high": r["est_earnings_high"],
                "currency": cfg["rules"]["crew"]["pay"]["currency"],
            },
        }
    for f in fs:
        d = by_op.get(f["operator_id"])
        if d is not None:
            d["findings"].append(
                {
                    "rule": f["rule"],
                    "severity": f["severity"],
                    "score": f["score"],
                    "summary": f["summary"],
                    "window_start": local(f["window_start_us"], tz),
                    "window_end": local(f["window_end_us"], tz),
                }
            )
    if by_op:
        mine = cdr.filter(F.col("operator_id").isin(list(by_op)))
        daily = (
            mine.groupBy("operator_id", "day")
            .agg(
                F.sum(F.coalesce("talk_s", F.lit(0))).alias("t"),
                F.count(F.lit(1)).alias("n"),
                F.sum(F.col("answered").cast("long")).alias("a"),
            )
            .orderBy("operator_id", "day")
            .collect()
        )
        for r in daily:
            by_op[r["operator_id"]]["daily"].append(
                {"day": r["day"], "talk_h": r2(r["t"] / 3600.0), "calls": r["n"], "answered": r["a"]}
            )
        for op, lines in clis(mine).items():
            by_op[op]["clis"] = lines
        first = (
            mine.filter(F.col("rn") <= 30)
            .select("operator_id", "rn", "start_us", "direction", "callee_num", "callee", "caller_id", "src_ip", "ip_country", "talk_s", "ref")
            .orderBy("operator_id", "rn")
            .collect()
        )
        for r in first:
            if st["redacted"]:
                callee = r["callee"] or ""
            else:
                callee = f"+{r['callee_num']}" if r["callee_num"] is not None else (r["callee"] or "")
            by_op[r["operator_id"]]["calls"].append(
                {
                    "time": local(r["start_us"], tz),
                    "direction": r["direction"] or "unknown",
                    "callee": callee,
                    "cli": r["caller_id"] or "",
                    "ip": r["src_ip"] or "",
                    "ip_country": r["ip_country"] or "",
                    "talk_s": r["talk_s"] or 0,
                    "call": r["ref"] or "",
                }
            )
    min_talk_h = cfg["rules"]["long_shift"]["min_talk_hours"]
    from zoneinfo import ZoneInfo

    for s in shift_rows:
        d = by_op.get(s["operator_id"])
        if d is None:
            continue
        su, eu = s["shift_start_us"], s["shift_end_us"]
        lt = utc(su).astimezone(ZoneInfo(tz))
        talk_h = s["talk_s"] / 3600.0
        d["shifts"].append(
            {
                "day": s["day"],
                "start": local(su, tz),
                "end": local(eu, tz),
                "start_hour": r2(lt.hour + lt.minute / 60.0),
                "span_h": r2((eu - su) / 3.6e9),
                "talk_h": r2(talk_h),
                "calls": s["calls"],
                "answered": s["answered"],
                "flagged": talk_h >= min_talk_h,
            }
        )
    if conv is not None and by_op:
        rows = (
            conv.filter(F.col("operator_id").isin(list(by_op)))
            .orderBy("operator_id", "joined_us", "member_e164", "group_id")
            .select("operator_id", "group_id", "member_e164", "minutes_to_join")
            .collect()
        )
        acc = {}
        for r in rows:
            e = acc.setdefault(r["operator_id"], ([], {}, set()))
            e[0].append(r2(even_round(r["minutes_to_join"], 1)))
            e[1][r["group_id"] or ""] = e[1].get(r["group_id"] or "", 0) + 1
            e[2].add(r["member_e164"] or "")
        for op, (mins, groups, members) in acc.items():
            answered = op_rows[op]["answered_callees"]
            converted = len(members)
            by_op[op]["conversions"] = {
                "answered_callees": answered,
                "converted": converted,
                "rate": rust_round(converted / answered, 4) if answered > 0 else 0.0,
                "minutes_to_join": mins,
                "groups": [[g, n] for g, n in sorted(groups.items())],
            }
    dl = sorted(by_op.values(), key=lambda d: (-d["risk_score"], d["operator_id"]))
    per_rule = {}
    for f in fs:
        per_rule[f["rule"]] = per_rule.get(f["rule"], 0) + 1
    inputs = [
        {
            "path": i["path"],
            "format": i.get("format") or "",
            "encoding": i.get("encoding") or "",
            "rows_read": i["rows_read"],
            "rows_rejected": i["rows_rejected"],
            "duplicates": i["duplicates"],
        }
        for m in mans
        for i in m["inputs"]
    ]
    return {
        "version": "spark",
        "tz": tz,
        "inputs": inputs,
        "rows_read": sum(i["rows_read"] for i in inputs),
        "rows_rejected": sum(i["rows_rejected"] for i in inputs),
        "duplicates": sum(i["duplicates"] for i in inputs),
        "findings_per_rule": dict(sorted(per_rule.items())),
        "ranking": [
            {"operator_id": r["operator_id"], "risk_score": r["risk_score"], "rules_hit": r["rules_hit"]}
            for r in operators
            if r["risk_score"] > 0
        ],
        "dossiers": dl,
        "redacted": st["redacted"],
        "quota_band_hours": cfg["rules"]["long_shift"]["quota_band_hours"],
        "crews": crew_pages(crews_rows, links_rows, mon_rows, shift_rows, operators, fs, set(by_op), cfg, tz),
    }


def clis(mine):
    """Each operator's caller IDs (report/mod.rs `clis`): keyed by the E.164 number, else the text
    as written; country and validity of the first use; IP countries in order of first use; the
    most used first, ties in order of first use."""
    key = F.coalesce(F.concat(F.lit("+"), F.col("caller_num").cast("string")), F.col("caller_id"), F.lit("(none)"))
    g = (
        mine.withColumn("_key", key)
        .groupBy("operator_id", "_key")
        .agg(
            F.count(F.lit(1)).alias("calls"),
            F.min(F.struct("rn", "caller_country", "caller_valid")).alias("first"),
            F.transform(
                F.array_sort(
                    F.collect_set(F.struct(F.col("rn").alias("o"), F.coalesce("ip_country", F.lit("unknown")).alias("v")))
                ),
                lambda s: s["v"],
            ).alias("ips"),
        )
        .collect()
    )
    out = {}
    for r in g:
        ips = list(dict.fromkeys(r["ips"]))
        out.setdefault(r["operator_id"], []).append(
            (
                r["first"]["rn"],
                {
                    "cli": r["_key"],
                    "country": r["first"]["caller_country"] or "",
                    "valid": bool(r["first"]["caller_valid"]),
                    "ip_countries": ", ".join(ips),
                    "calls": r["calls"],
                },
            )
        )
    return {op: [x for _, x in sorted(v, key=lambda t: (-t[1]["calls"], t[0]))] for op, v in out.items()}
