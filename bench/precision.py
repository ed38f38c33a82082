#!/usr/bin/env python3
# Operator-level precision and recall of a scan against generate's truth.json:
#   python3 bench/precision.py bench/data/N/truth.json OUT_DIR
import json, csv, sys
t = json.load(open(sys.argv[1]))
out = sys.argv[2]
flag = {}
with open(out + "/findings.csv") as f:
    for r in csv.DictReader(f):
        if r.get("operator_id"):
            flag.setdefault(r["rule"], set()).add(r["operator_id"])
for rule, key in [("long-shift","long_shift"),("spoofed-foreign-cli","spoofed_foreign_cli"),("group-invite-conversion","group_invite_conversion")]:
    want = {o["operator_id"] for o in t["operators"] if o[key]}
    got = flag.get(rule, set())
    tp = len(got & want)
    print(f"{rule}: precision {tp/max(len(got),1):.4f} recall {tp/max(len(want),1):.4f} ({len(got)} flagged, {len(want)} true)")
