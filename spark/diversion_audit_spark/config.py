"""The audit's TOML configuration: the same file and defaults as the native binary's
(`diversion-audit config init`); only the keys the Spark job uses are read, the others are kept."""

import copy
import tomllib

DEFAULTS = {
    "input": {"tz": "Asia/Shanghai", "home_region": "CN"},
    "rules": {
        "long_shift": {"shift_break_minutes": 120, "min_talk_hours": 8.0, "quota_band_hours": [8.0, 10.0]},
        "shared_seat": {"min_concurrent_minutes": 15.0, "min_summed_ratio": 1.5},
        "spoofed_foreign_cli": {"min_calls": 5, "domestic_campaigns": [], "domestic_trunks": []},
        "foreign_cli_fanout": {"fanout_min_callees": 50},
        "group_invite_conversion": {
            "conversion_window_minutes": 60,
            "min_conversions": 3,
            "min_conversion_rate": 0.02,
            "include_inbound": False,
        },
        "cli_rotation": {"min_calls": 20, "min_distinct": 5, "min_change_share": 0.5},
        "long_shift_streak": {"min_days": 5, "window_days": 7},
        "repeat_spoofer": {"min_days": 3, "window_days": 7},
        "crew": {"pay": {"currency": "CNY", "day_rate": 200.0, "quota_hours": 8.0, "commission": [5.0, 10.0]}},
    },
}


def merge(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def load(path=None):
    """The defaults, overridden by the TOML file at `path` (if any)."""
    if not path:
        return copy.deepcopy(DEFAULTS)
    with open(path, "rb") as f:
        return merge(DEFAULTS, tomllib.load(f))
