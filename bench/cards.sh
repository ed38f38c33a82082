#!/usr/bin/env bash
# The card ledger benchmark (issue 26): `cards` over a generated ledger of N rows (default 10 M),
# from the provider's CSV export (Chinese headers, a PIN column it must not read) and from its
# Parquet copy, with the shops' sales; wall seconds and peak RSS (GNU time), runs alternated,
# medians; the findings checked against the generator's truth (precision and recall per rule).
# Writes bench/cards-results.md, which bench/run.sh carries into bench/results.md (and this script
# splices there too).
#
# usage: bench/cards.sh [--rows N] [--runs R] [--profile dist]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ARGS="$*"
ROWS=10000000
RUNS=3
PROFILE=dist
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --profile) PROFILE="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/da-target}"
cargo build --profile "$PROFILE" -q
BIN="$CARGO_TARGET_DIR/$PROFILE/diversion-audit"
D="$ROOT/bench/data/cards-$ROWS"
if [ ! -f "$D/cards/ledger.parquet" ]; then
  echo "generating a $ROWS-row ledger in $D (not timed)" >&2
  "$BIN" generate --out "$D" --cards --card-rows "$ROWS" --operators 10 --days 30 --no-overlap --seed 42 2>/dev/null
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
measure() { # file label args...
  local into="$1"; shift
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$BIN" cards --quiet "$@" > "$WORK/stdout" 2> "$WORK/stderr" || {
    echo "failed: $*" >&2; cat "$WORK/stderr" >&2; exit 2; }
  awk '{printf "%s %.0f\n", $1, $2/1024}' "$WORK/time" >> "$into"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
: > "$WORK/csv"; : > "$WORK/pq"
for _ in $(seq "$RUNS"); do
  measure "$WORK/csv" "$D/cards/ledger.csv" --sales "$D/cards/sales.csv" --out "$WORK/out-csv"
  measure "$WORK/pq" "$D/cards/ledger.parquet" --sales "$D/cards/sales.csv" --out "$WORK/out-pq"
done
CSV_MB=$(du -m "$D/cards/ledger.csv" | cut -f1); PQ_MB=$(du -m "$D/cards/ledger.parquet" | cut -f1)
line() { # label file
  local s m
  s=$(cut -d' ' -f1 "$2" | median); m=$(cut -d' ' -f2 "$2" | median)
  echo "| $ROWS | $1 | $s | $(cut -d' ' -f1 "$2" | paste -sd' ') | $m | $(awk -v n="$ROWS" -v s="$s" 'BEGIN{printf "%.1f", n/s/1e6}') |"
}
PR=$(python3 - "$D/cards/truth.json" "$WORK/out-csv/findings.jsonl" "$WORK/out-pq/findings.jsonl" <<'PY'
import json, sys
truth = json.load(open(sys.argv[1]))
want = {
    "card-buyback-below-market": {s["supplier"] for s in truth["suppliers"] if s["card-buyback-below-market"]},
    "card-fast-redemption": {s["supplier"] for s in truth["suppliers"] if s["card-fast-redemption"]},
    "card-retail-above-face": {s["shop"] for s in truth["shops"] if s["card-retail-above-face"]},
}
runs = [[json.loads(l) for l in open(p)] for p in sys.argv[2:]]
same = {(f["rule"], f["subject"]) for f in runs[0]} == {(f["rule"], f["subject"]) for f in runs[1]}
for rule, t in want.items():
    got = {f["subject"] for f in runs[0] if f["rule"] == rule}
    tp = len(got & t)
    p = tp / len(got) if got else 1.0
    r = tp / len(t) if t else 1.0
    print(f"| {rule} | {len(t)} | {len(got)} | {p:.3f} | {r:.3f} |")
print(f"CSV and Parquet findings alike: {'yes' if same else 'NO'}")
PY
)
{
  echo "## The card ledger (issue 26)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $RUNS runs each, alternated; medians; $(date -u +%Y-%m-%d)."
  echo "diversion-audit $("$BIN" --version | awk '{print $2}') (profile $PROFILE). Command: \`bench/cards.sh $ARGS\`."
  echo "Input: \`generate --cards --card-rows $ROWS --days 30 --seed 42\`: ledger.csv ($CSV_MB MB, Chinese headers and a PIN column), ledger.parquet ($PQ_MB MB), sales.csv; \`cards LEDGER --sales sales.csv --out DIR\` runs the three card rules and writes every output."
  echo
  echo "| rows | ledger | s (median) | runs | peak RSS MB | M rows/s |"
  echo "|---:|---|---:|---|---:|---:|"
  line "CSV" "$WORK/csv"
  line "Parquet" "$WORK/pq"
  echo
  echo "Against the generator's truth (suppliers and shops):"
  echo
  echo "| rule | true | flagged | precision | recall |"
  echo "|---|---:|---:|---:|---:|"
  echo "$PR" | grep '^|'
  echo
  echo "$PR" | grep -v '^|'
} > "$ROOT/bench/cards-results.md"
# splice the section into results.md (replacing an earlier one)
python3 - "$ROOT/bench/results.md" "$ROOT/bench/cards-results.md" <<'PY'
import sys, re
res, sec = sys.argv[1], open(sys.argv[2]).read()
text = open(res).read() if __import__("os").path.exists(res) else ""
text = re.sub(r"\n## The card ledger \(issue 26\)\n.*?(?=\n## |\Z)", "\n", text, flags=re.S).rstrip("\n")
open(res, "w").write(text + "\n\n" + sec)
PY
cat "$ROOT/bench/cards-results.md"
