#!/usr/bin/env python3
# Operator-level precision and recall of a scan against generate's truth.json:
#   python3 bench/precision.py DATA_DIR/truth.json OUT_DIR
# Each rule is scored against its label (what was written meets the rule's contract at its default
# thresholds) and, for the detection rules, against the population (diversion or not): the second
# is the figure an investigator meets, with legitimate agents who straddle the thresholds.
import json, sys
t = json.load(open(sys.argv[1]))
out = sys.argv[2]
flag = {}
for line in open(out + "/findings.jsonl"):
    f = json.loads(line)
    ops = [f["operator_id"]] if f.get("operator_id") else f["evidence"].get("operators", [])
    flag.setdefault(f["rule"], set()).update(ops)
diversion = {o["operator_id"] for o in t["operators"] if o["population"].startswith("diversion")}
for rule in ["long-shift", "shared-seat", "spoofed-foreign-cli", "foreign-cli-fanout", "group-invite-conversion"]:
    key = rule.replace("-", "_")
    want = {o["operator_id"] for o in t["operators"] if o.get(key)}
    got = flag.get(rule, set())
    tp = len(got & want)
    p, r = tp / max(len(got), 1) if got else 1.0, tp / max(len(want), 1) if want else 1.0
    print(f"{rule}: label precision {p:.4f} recall {r:.4f} ({len(got)} flagged, {len(want)} true)"
          + (f"; false {sorted(got - want)[:8]} missed {sorted(want - got)[:8]}" if got != want else ""))
    if rule != "shared-seat":
        tpp = len(got & diversion)
        print(f"  vs population: precision {tpp / max(len(got), 1):.4f} recall {tpp / max(len(diversion), 1):.4f}")
