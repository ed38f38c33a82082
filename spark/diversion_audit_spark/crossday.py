"""Day profiles (one per operator and local day a shift started on) and the cross-day rules over
them and over `--history` (src/pipeline/history.rs, src/rules/long_shift_streak.rs,
src/rules/repeat_spoofer.rs)."""

import bisect
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .prepare import rust_round
from .rules import finding

REPORT_ORDER = [
    "long-shift",
    "shared-seat",
    "spoofed-foreign-cli",
    "foreign-cli-fanout",
    "group-invite-conversion",
    "cli-rotation",
    "long-shift-streak",
    "repeat-spoofer",
    "crew",
]


def profiles(shift_rows, findings, facts):
    """This run's profiles, sorted by operator then date (`shift_rows`: the shifts in operator and
    start order)."""
    m = {}

    def entry(op, d):
        if (op, d) not in m:
            m[(op, d)] = {
                "date": d,
                "operator_id": op,
                "shifts": 0,
                "calls": 0,
                "answered": 0,
                "talk_h": 0.0,
                "max_shift_talk_h": 0.0,
                "long_shift": False,
                "spoofed_calls": 0,
                "conversions": 0,
                "rules_hit": "",
            }
        return m[(op, d)]

    for s in shift_rows:
        e = entry(s["operator_id"], s["day"])
        th = s["talk_s"] / 3600.0
        e["shifts"] += 1
        e["calls"] += s["calls"]
        e["answered"] += s["answered"]
        e["talk_h"] += th
        e["max_shift_talk_h"] = max(e["max_shift_talk_h"], th)
    days_of = {}
    for op, d in m:
        days_of.setdefault(op, []).append(d)
    for v in days_of.values():
        v.sort()

    def shift_day(op, d):
        v = days_of.get(op)
        if not v:
            return d
        k = bisect.bisect_right(v, d)
        return v[k - 1] if k else d

    def add(e, fact):
        e["long_shift"] |= bool(fact.get("long_shift"))
        e["spoofed_calls"] += fact.get("spoofed_calls", 0)
        e["conversions"] += fact.get("conversions", 0)

    hit = {}
    for f in findings:
        op, fact = f["operator_id"], f.get("fact")
        if op is None or fact is None:
            continue
        d = shift_day(op, fact["day"])
        add(entry(op, d), fact)
        hit.setdefault((op, d), set()).add(f["rule"])
    for fact in facts:
        op = fact["operator_id"]
        add(entry(op, shift_day(op, fact["day"])), fact)
    for key, p in m.items():
        p["talk_h"] = rust_round(p["talk_h"], 3)
        p["max_shift_talk_h"] = rust_round(p["max_shift_talk_h"], 3)
        if key in hit:
            p["rules_hit"] = ";".join(r for r in REPORT_ORDER if r in hit[key])
    return sorted(m.values(), key=lambda p: (p["operator_id"], p["date"]))


def read_history(history, first: str, as_of: str, run_days):
    """Profiles of the days [first, as_of] not audited by this run, from `--history`
    (`date=YYYY-MM-DD/profiles.parquet`, as the native scan writes them; a directory the driver
    reads). A missing directory is an empty history."""
    import os

    import pyarrow.parquet as pq

    if not history or not os.path.isdir(history):
        return []
    out = []
    for name in sorted(os.listdir(history)):
        d = name[len("date=") :] if name.startswith("date=") else None
        if d is None or not (first <= d <= as_of) or d in run_days:
            continue
        f = os.path.join(history, name, HISTORY_FILE)
        if not os.path.exists(f):
            continue
        for r in pq.read_table(f).to_pylist():
            r["date"] = r["date"].isoformat() if isinstance(r["date"], date) else str(r["date"])
            r["long_shift"] = bool(r["long_shift"])
            out.append(r)
    return out


HISTORY_FILE = "profiles.parquet"


def write_history(history, profiles, days):
    """This run's profiles, one partition per audited day (`date=YYYY-MM-DD/profiles.parquet`, the
    native types), each replaced atomically; other days are left alone."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("date", pa.date32()),
            ("operator_id", pa.string()),
            ("shifts", pa.uint32()),
            ("calls", pa.uint32()),
            ("answered", pa.uint32()),
            ("talk_h", pa.float64()),
            ("max_shift_talk_h", pa.float64()),
            ("long_shift", pa.bool_()),
            ("spoofed_calls", pa.uint32()),
            ("conversions", pa.uint32()),
            ("rules_hit", pa.string()),
        ]
    )
    for d in days:
        rows = [dict(p, date=date.fromisoformat(p["date"])) for p in profiles if p["date"] == d]
        part = os.path.join(history, f"date={d}")
        os.makedirs(part, exist_ok=True)
        tmp = os.path.join(part, f".{HISTORY_FILE}.{os.getpid()}.tmp")
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
        os.replace(tmp, os.path.join(part, HISTORY_FILE))


def day_start(d: str, tz: str) -> int:
    """µs of local midnight of `d`."""
    t = datetime.combine(date.fromisoformat(d), time(0), tzinfo=ZoneInfo(tz))
    return int(t.timestamp()) * 1_000_000


def streaks(profiles, as_of: str, window_days: int, min_days: int, hit):
    first = (date.fromisoformat(as_of) - timedelta(days=window_days - 1)).isoformat()
    by_op = {}
    for p in profiles:
        by_op.setdefault(p["operator_id"], []).append(p)
    out = []
    for op, ps in by_op.items():
        inw = [p for p in ps if first <= p["date"] <= as_of]
        hits = [p for p in inw if hit(p)]
        if len(hits) >= min_days:
            out.append((op, hits, len(inw)))
    return out


def cross_day(all_profiles, cfg, as_of, tz, history_days):
    out = []
    nxt = (date.fromisoformat(as_of) + timedelta(days=1)).isoformat()

    def score(n, mn):
        return rust_round(min(0.7 + 0.1 * max(n - mn, 0), 1.0), 2)

    c = cfg["rules"]["long_shift_streak"]
    for op, hits, active in streaks(all_profiles, as_of, c["window_days"], c["min_days"], lambda p: p["long_shift"]):
        lst = ", ".join(f"{p['date']} ({p['max_shift_talk_h']:.1f} h)" for p in hits)
        summary = f"Operator {op} had a long shift on {len(hits)} of the last {c['window_days']} days (to {as_of}): {lst}."
        evidence = {
            "long_shift_days": len(hits),
            "window_days": c["window_days"],
            "as_of": as_of,
            "days_with_records": active,
            "days": [
                {
                    "date": p["date"],
                    "max_shift_talk_h": p["max_shift_talk_h"],
                    "talk_h": p["talk_h"],
                    "from_history": p["date"] in history_days,
                }
                for p in hits
            ],
        }
        out.append(
            finding(
                "long-shift-streak", op, None, day_start(hits[0]["date"], tz), day_start(nxt, tz),
                score(len(hits), c["min_days"]), summary, evidence,
            )
        )
    c = cfg["rules"]["repeat_spoofer"]
    for op, hits, active in streaks(all_profiles, as_of, c["window_days"], c["min_days"], lambda p: p["spoofed_calls"] > 0):
        total = sum(p["spoofed_calls"] for p in hits)
        summary = (
            f"Operator {op} showed spoofed foreign caller IDs on {len(hits)} of the last {c['window_days']} days "
            f"(to {as_of}), {total} calls in all."
        )
        evidence = {
            "spoofing_days": len(hits),
            "window_days": c["window_days"],
            "as_of": as_of,
            "spoofed_calls": total,
            "days_with_records": active,
            "days": [
                {"date": p["date"], "spoofed_calls": p["spoofed_calls"], "from_history": p["date"] in history_days}
                for p in hits
            ],
        }
        out.append(
            finding(
                "repeat-spoofer", op, None, day_start(hits[0]["date"], tz), day_start(nxt, tz),
                score(len(hits), c["min_days"]), summary, evidence,
            )
        )
    return out


def pay_days(profiles, pay_cfg):
    """operator → [paid days, conversions] from this run's day profiles ([rules.crew.pay]: a day
    is paid when its talk reaches `quota_hours`), as the native crew analysis counts them."""
    out = {}
    for p in profiles:
        e = out.setdefault(p["operator_id"], [0, 0])
        e[0] += 1 if p["talk_h"] + 1e-9 >= pay_cfg["quota_hours"] else 0
        e[1] += p["conversions"]
    return out
