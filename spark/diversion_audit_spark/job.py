"""The Spark audit: canonical Parquet in, the native scan's outputs out.

    spark-submit spark/audit.py --canonical DIR --joins DIR --out DIR [--config audit.toml] [--history DIR]

Writes findings.csv/.jsonl/.parquet, operators.csv/.parquet, shifts.csv/.parquet, conversions.csv,
groups.csv, dossiers.json (so `diversion-audit report --from DIR` renders dossiers) and run.json.
"""

import argparse
import os
import sys
import time

from datetime import date, timedelta

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from . import SCHEMA_VERSION, config, crew, crossday, prepare, rules, write


def parse(argv):
    p = argparse.ArgumentParser(prog="diversion-audit-spark", description=__doc__.splitlines()[0])
    p.add_argument("--canonical", required=True, help="a `diversion-audit normalize` output directory")
    p.add_argument("--joins", help="normalised join logs (normalize's DIR/_joins)")
    p.add_argument("--out", required=True, help="output directory (the native scan's files)")
    p.add_argument("--config", help="the audit's TOML config (the same file the native scan reads)")
    p.add_argument(
        "--history",
        help="day profiles kept across runs (the native `--history` layout, on the driver's file system): "
        "earlier days are read for the cross-day rules, the audited days' partitions replaced",
    )
    p.add_argument("--date", help="audit only the shifts that start on this local day (YYYY-MM-DD)")
    p.add_argument("--since", help="audit only shifts starting on or after this local day")
    p.add_argument("--until", help="audit only shifts starting on or before this local day")
    p.add_argument("--master", help="Spark master when not set by spark-submit (e.g. local[2])")
    p.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting when not run by spark-submit (e.g. spark.driver.memory=8g); repeatable",
    )
    p.add_argument(
        "--shuffle-partitions",
        type=int,
        help="spark.sql.shuffle.partitions (Spark's default 200 suits a cluster; a few per core suit local mode)",
    )
    return p.parse_args(argv)


def session(args, tz):
    b = SparkSession.builder.appName("diversion-audit")
    if args.master:
        b = b.master(args.master)
    # days and local times are the audit zone's; partition values stay text (day=2026-03-02)
    b = b.config("spark.sql.session.timeZone", tz).config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
    b = b.config("spark.ui.showConsoleProgress", "false")
    # long arithmetic wraps as Rust's wrapping_mul does (the lead lists' sample hash)
    b = b.config("spark.sql.ansi.enabled", "false")
    for kv in args.conf:
        k, _, v = kv.partition("=")
        b = b.config(k, v)
    if args.shuffle_partitions:
        b = b.config("spark.sql.shuffle.partitions", str(args.shuffle_partitions))
    return b.getOrCreate()


def run(argv=None):
    args = parse(argv if argv is not None else sys.argv[1:])
    t0 = time.time()
    cfg = config.load(args.config)
    spark = session(args, cfg["input"]["tz"])
    spark.sparkContext.setLogLevel("ERROR")
    mans = prepare.manifests(spark, args.canonical)
    st = prepare.settings(mans, cfg)
    tz = st["tz"]
    times = {}

    def lap(name, t):
        times[name] = round(time.time() - t, 3)

    t = time.time()
    since, until = (args.date, args.date) if args.date else (args.since, args.until)
    allrows = prepare.calls(spark, args.canonical, since, until)
    brk = cfg["rules"]["long_shift"]["shift_break_minutes"]
    ops = allrows.filter(~F.col("subscriber") & F.col("operator_id").isNotNull())
    cdr = prepare.select_days(prepare.with_shifts(ops, brk), brk, since, until).cache()
    shifts = prepare.shifts(cdr).cache()
    # a carrier's subscriber records: the calling number in the operator's place, every call outbound
    subs = (
        allrows.filter(F.col("subscriber"))
        .withColumn(
            "operator_id",
            F.coalesce(F.concat(F.lit("+"), F.col("caller_num").cast("string")), F.col("caller_id")),
        )
        .withColumn("direction", F.lit("outbound"))
        .filter(F.col("operator_id").isNotNull())
    )
    subs = prepare.select_days(prepare.with_shifts(subs, brk), brk, since, until)
    has_subs = subs.limit(1).count() > 0
    lap("prepare", t)
    joins = None
    if args.joins:
        # normalize writes the join log under `_joins`, a name Spark's listing skips: its files are
        # named directly
        src = args.joins.rstrip("/")
        j = spark.read.parquet(src + "/*.parquet" if not src.endswith(".parquet") else src)
        member = F.coalesce("member_e164", "member")
        first = Window.partitionBy("group_id", member, "joined_us").orderBy("source_file", "source_line")
        joins = (
            j.withColumn("_k", F.row_number().over(first))
            .filter("_k = 1")
            .drop("_k")
            .filter(F.col("member_e164").isNotNull())
            .cache()
        )
    findings, metrics, facts, notes = [], [], [], []
    t = time.time()
    f, m = rules.long_shift(cdr, shifts, cfg, tz)
    findings += f
    metrics.append(m)
    lap("long-shift", t)
    t = time.time()
    f, m = rules.shared_seat(cdr, shifts, cfg, tz)
    findings += f
    metrics.append(m)
    lap("shared-seat", t)
    t = time.time()
    has_ip = cdr.filter(F.col("ip_country").isNotNull()).limit(1).count() > 0
    f, m, n = rules.spoofed(cdr, cfg, st, has_ip)
    findings += f
    notes += n
    if m is not None:
        metrics.append(m)
    lap("spoofed-foreign-cli", t)
    t = time.time()
    fan_in = cdr.select("operator_id", "rn", *FAN_COLS)
    if has_subs:
        fan_in = fan_in.unionByName(subs.select("operator_id", "rn", *FAN_COLS))
    findings += rules.fanout(fan_in, cfg, st)
    lap("foreign-cli-fanout", t)
    t = time.time()
    conv_in = cdr.select("operator_id", "rn", *CONV_COLS)
    if has_subs:
        conv_in = conv_in.unionByName(subs.select("operator_id", "rn", *CONV_COLS))
    f, m, cf, conv, groups, n = rules.conversion(conv_in, joins, cfg, tz)
    findings += f
    metrics.append(m)
    facts += cf
    notes += n
    lap("group-invite-conversion", t)
    t = time.time()
    f, m = rules.cli_rotation(cdr, cfg, tz)
    findings += f
    metrics.append(m)
    lap("cli-rotation", t)

    t = time.time()
    shift_rows = shifts.orderBy("operator_id", "shift_start_us").collect()
    run_profiles = crossday.profiles(shift_rows, findings, facts)
    run_days = sorted({p["date"] for p in run_profiles})
    history_days = set()
    profiles = list(run_profiles)
    if run_days:
        as_of = run_days[-1]
        w = max(cfg["rules"]["long_shift_streak"]["window_days"], cfg["rules"]["repeat_spoofer"]["window_days"])
        first = (date.fromisoformat(as_of) - timedelta(days=w - 1)).isoformat()
        old = crossday.read_history(args.history, first, as_of, set(run_days))
        history_days = {p["date"] for p in old}
        profiles += old
        profiles.sort(key=lambda p: (p["operator_id"], p["date"]))
        findings += crossday.cross_day(profiles, cfg, as_of, tz, history_days)
    lap("cross_day", t)
    t = time.time()
    f, crews_rows, links_rows, mon_rows, crew_id = crew.analyse(spark, cdr, shifts, conv, findings, run_profiles, cfg, tz)
    findings += f
    lap("crew", t)
    if args.history and run_days:
        crossday.write_history(args.history, run_profiles, run_days)
    t = time.time()
    findings = write.sort_findings(findings)
    os.makedirs(args.out, exist_ok=True)
    operators = write.operators(spark, cdr, shifts, metrics, findings, run_profiles, cfg, crew_id)
    write.crew_tables(args.out, crews_rows, links_rows, mon_rows)
    write.findings(args.out, findings, spark)
    write.table_both(args.out, "operators", operators)
    write.shifts(args.out, shifts, cfg)
    if conv is not None:
        write.conversions(args.out, conv, groups, tz)
    else:
        write.empty_conversions(args.out)
    dossiers = write.dossiers(cdr, shift_rows, findings, operators, conv, cfg, st, mans, crews_rows, links_rows, mon_rows)
    write.json_file(os.path.join(args.out, "dossiers.json"), dossiers)
    lap("write", t)
    per_rule = {r: 0 for r in crossday.REPORT_ORDER}
    for f in findings:
        per_rule[f["rule"]] += 1
    times["total"] = round(time.time() - t0, 3)
    write.json_file(
        os.path.join(args.out, "run.json"),
        {
            "engine": "spark",
            "spark_version": spark.version,
            "canonical_schema": SCHEMA_VERSION,
            "part_sets": [m["id"] for m in mans],
            "days_audited": run_days,
            "history": {"dir": args.history, "days_read": sorted(history_days)} if args.history else None,
            "config": cfg,
            "findings_per_rule": per_rule,
            "notes": notes,
            "seconds": times,
        },
    )
    print(f"{len(findings)} findings, {len(operators)} operators, {len(shift_rows)} shifts in {args.out} ({times['total']} s)")
    spark.stop()


# the columns the rules that also judge a carrier's subscriber records read
FAN_COLS = ["caller_num", "caller_country", "caller_valid", "direction", "callee_num", "day", "ip_country", "start_us", "end_us", "ref"]
CONV_COLS = ["answered", "direction", "callee_num", "answer_us", "start_us", "end_us", "ref"]


if __name__ == "__main__":
    run()
