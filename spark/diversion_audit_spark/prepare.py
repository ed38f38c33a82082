"""What every rule reads, as the native `prepare` makes it: the canonical calls (deduplicated
across parts), each operator's calls in start order, and the shifts.

Shifts are cut by window functions over gaps (a call that starts more than the break after every
earlier call of the operator has ended starts a new one); a shift's talk is the union of its calls'
talk intervals, measured by a running sum over interval events (ends before starts at one instant,
as src/prepare/shifts.rs)."""

import json
import math
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from . import SCHEMA_VERSION

# a row of an export repeated in another part (overlapping exports normalised on different hosts):
# the same leg with the same content; the first by file and line is kept
DEDUP_KEY = [
    "leg_id",
    "operator_id",
    "direction",
    "start_us",
    "answer_us",
    "end_us",
    "duration_s",
    "talk_s",
    "caller_id",
    "callee",
    "disposition",
]

US = 1_000_000


def manifests(spark: SparkSession, canonical: str) -> list:
    """The manifests of every part set under `canonical` (`_manifests/*.json`)."""
    rows = spark.sparkContext.wholeTextFiles(canonical.rstrip("/") + "/_manifests/*.json").collect()
    out = [json.loads(text) for _, text in rows]
    if not out:
        raise SystemExit(f"{canonical}: no _manifests/*.json: not a `diversion-audit normalize` output")
    for m in out:
        if m.get("schema_version") != SCHEMA_VERSION:
            raise SystemExit(
                f"{canonical}: part set {m.get('id')} has canonical schema {m.get('schema_version')}, "
                f"this job reads {SCHEMA_VERSION}"
            )
    return out


def settings(mans: list, cfg: dict) -> dict:
    """Zone, home region and home prefix: the config's, which every part set must have been
    normalised with (a day is a local day of one zone)."""
    tz, region = cfg["input"]["tz"], cfg["input"]["home_region"].upper()
    for m in mans:
        if m.get("tz") != tz or m.get("home_region") != region:
            raise SystemExit(
                f"part set {m.get('id')} was normalised with tz {m.get('tz')} and home region "
                f"{m.get('home_region')}; the config says {tz} and {region}"
            )
    prefixes = {m.get("home_prefix") for m in mans}
    if len(prefixes) != 1:
        raise SystemExit(f"part sets disagree on the home prefix: {sorted(map(str, prefixes))}")
    return {
        "tz": tz,
        "home_region": region,
        "home_prefix": prefixes.pop(),
        "redacted": any(m.get("redacted") for m in mans),
    }


def calls(spark: SparkSession, canonical: str, since=None, until=None) -> DataFrame:
    """Every canonical row once, with `day` (local day of the start) as text. With a selection of
    days, only the partitions that can hold their shifts are read: from the day before (a shift
    that starts on `since` is told from one that began the evening before) to two days after
    (a night shift's calls after midnight)."""
    df = spark.read.option("basePath", canonical).parquet(canonical)
    if since:
        df = df.filter(F.col("day") >= (date.fromisoformat(since) - timedelta(days=1)).isoformat())
    if until:
        df = df.filter(F.col("day") <= (date.fromisoformat(until) + timedelta(days=2)).isoformat())
    first = Window.partitionBy(*DEDUP_KEY).orderBy("source_file", "source_line")
    return (
        df.withColumn("_k", F.row_number().over(first))
        .filter("_k = 1")
        .drop("_k")
        .withColumn("day", F.col("day").cast("string"))
    )


def operator_window():
    return Window.partitionBy("operator_id").orderBy("start_us", "source_file", "source_line")


def with_shifts(cdr: DataFrame, break_minutes: int) -> DataFrame:
    """`cdr` (operator calls) with `rn` (the call's place in its operator's start order),
    `shift_no` (from 1) and `srn` (its place in the shift)."""
    w = operator_window()
    end = F.coalesce("end_us", "start_us")
    before = F.max(end).over(w.rowsBetween(Window.unboundedPreceding, -1))
    new = before.isNull() | ((F.col("start_us") - before) > F.lit(break_minutes * 60 * US))
    return (
        cdr.withColumn("rn", F.row_number().over(w))
        .withColumn("_new", new.cast("int"))
        .withColumn("shift_no", F.sum("_new").over(w.rowsBetween(Window.unboundedPreceding, 0)))
        .drop("_new")
        .withColumn(
            "srn",
            F.row_number().over(Window.partitionBy("operator_id", "shift_no").orderBy("rn")),
        )
    )


def select_days(cdr: DataFrame, break_minutes: int, since=None, until=None) -> DataFrame:
    """The calls of the shifts that start on the selected local days (all without a selection),
    cut again so that every call's place (`rn`, `srn`) counts from the kept ones, as the native
    `prepare_days`."""
    if not since and not until:
        return cdr
    day = F.date_format(F.timestamp_micros(F.min("start_us")), "yyyy-MM-dd")
    starts = cdr.groupBy("operator_id", "shift_no").agg(day.alias("_d"))
    keep = starts
    if since:
        keep = keep.filter(F.col("_d") >= since)
    if until:
        keep = keep.filter(F.col("_d") <= until)
    kept = cdr.join(keep.select("operator_id", "shift_no"), ["operator_id", "shift_no"], "left_semi")
    return with_shifts(kept.drop("rn", "shift_no", "srn"), break_minutes)


def shifts(cdr: DataFrame) -> DataFrame:
    """One row per shift, the columns of the native shift table (src/prepare/shifts.rs)."""
    key = ["operator_id", "shift_no"]
    d = F.col("direction")
    talk = F.coalesce("talk_s", F.lit(0))
    base = cdr.groupBy(*key).agg(
        F.min("start_us").alias("shift_start_us"),
        F.max(F.coalesce("end_us", "start_us")).alias("shift_end_us"),
        F.count(F.lit(1)).alias("calls"),
        F.sum(F.col("answered").cast("long")).alias("answered"),
        F.countDistinct("callee_num").alias("distinct_callees"),
        F.sum(talk).alias("talk_sum_s"),
        *[F.sum((d == k).cast("long")).alias(f"calls_{k}") for k in ("outbound", "inbound", "internal")],
        *[F.sum(F.when(d == k, talk).otherwise(0)).alias(f"talk_{k}_s") for k in ("outbound", "inbound", "internal")],
    )
    # talk intervals (answer to answer + talk) as events: +1 at the answer, -1 at the end
    t = F.col("talk_s")
    iv = cdr.filter(t > 0).select(
        *key,
        F.coalesce("answer_us", F.coalesce("end_us", "start_us") - t * US).alias("a"),
        (t * US).alias("len"),
    )
    ev = iv.select(*key, F.col("a").alias("t"), F.lit(1).alias("d")).unionByName(
        iv.select(*key, (F.col("a") + F.col("len")).alias("t"), F.lit(-1).alias("d"))
    )
    ew = Window.partitionBy(*key).orderBy("t", "d")
    ev = (
        ev.withColumn("level", F.sum("d").over(ew.rowsBetween(Window.unboundedPreceding, 0)))
        .withColumn("dur", F.coalesce(F.lead("t").over(ew) - F.col("t"), F.lit(0)))
        .withColumn("peak", F.max("level").over(Window.partitionBy(*key)))
    )
    over = ev.groupBy(*key).agg(
        F.sum(F.when(F.col("level") >= 1, F.col("dur")).otherwise(0)).alias("union_us"),
        F.sum(F.when(F.col("level") >= 2, F.col("dur")).otherwise(0)).alias("at2_us"),
        F.max("level").alias("peak_concurrent"),
        F.min(F.when(F.col("level") == F.col("peak"), F.col("t"))).alias("peak_at_us"),
    )
    s = base.join(over, key, "left").fillna(0, subset=["union_us", "at2_us", "peak_concurrent", "peak_at_us"])
    return (
        s.withColumn("talk_s", F.expr("union_us div 1000000"))
        .withColumn("concurrent_s", F.expr("at2_us div 1000000"))
        .withColumn("span_s", F.expr("(shift_end_us - shift_start_us) div 1000000"))
        .withColumn("day", F.date_format(F.timestamp_micros("shift_start_us"), "yyyy-MM-dd"))
        .withColumn("talk_h", F.col("talk_s") / 3600.0)
        .withColumn("occupancy", F.col("talk_s") / F.greatest(F.col("span_s").cast("double"), F.lit(1.0)))
        .drop("union_us", "at2_us")
    )


def local(us) -> F.Column:
    """`YYYY-MM-DD HH:MM` in the session's zone (the audit's)."""
    return F.date_format(F.timestamp_micros(us), "yyyy-MM-dd HH:mm")


def rust_round(x: float, places: int) -> float:
    """`frame::round`: half away from zero at `places`, as Rust's f64::round."""
    m = 10.0**places
    y = x * m
    r = math.floor(abs(y))
    if abs(y) - r >= 0.5:
        r += 1
    return math.copysign(r, y) / m


def even_round(x: float, places: int) -> float:
    """Polars' `round(places, HalfToEven)`: (x * 10^p).round_ties_even() / 10^p."""
    m = 10.0**places
    return round(x * m) / m
