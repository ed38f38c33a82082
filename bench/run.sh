#!/usr/bin/env bash
# Benchmark: diversion-audit scan against the DuckDB reference (../shared/bench/duckdb_reference.py),
# same inputs, same thread count, runs alternated. Writes bench/results.md.
#
# usage: bench/run.sh [--sizes "1000000 10000000"] [--runs 3] [--with-100m] [--threads N] [--profile dist]
#                     [--no-time-order] [--baseline BIN] [--duckdb VERSION]
# At 10 M rows the CSV is also run in start-time order (bench/data/10000000/cdr-time-order.csv, made
# with sort(1), not timed); --no-time-order leaves that out. The guard below holds only the
# generated (operator-ordered) CSV and Parquet.
# The audit is built with Cargo profile `dist` (release with fat LTO: the build users should run;
# ~22 minutes clean on 2 cores) unless --profile names another (`release` for a quick look).
# --baseline BIN also runs another build of the audit (say, the commit before a change, built into
# its own target directory) in the same alternation, and reports its time and peak beside the audit's:
# a before/after comparison in one run, on the same inputs and the same machine load.
# The reference runs on a pinned DuckDB (--duckdb, default 2.0.0, the version every figure in
# docs/performance.md was measured against): the guard should move with the audit, not with DuckDB
# releases (2.0.1 runs the reference's 10 M CSV about a quarter faster on this machine).
# Exit status: 0; 3 when a 10 M-row audit ÷ reference ratio is above 1.0 (the regression guard);
# 2 on a setup error.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SIZES="1000000 10000000"
RUNS=3
THREADS=$(nproc)
PROFILE=dist
TIME_ORDER=1
BASELINE=""
DUCKDB_VERSION=2.0.0
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) SIZES="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --with-100m) SIZES="$SIZES 100000000"; shift ;;
    --threads) THREADS="$2"; shift 2 ;;
    --profile) PROFILE="$2"; shift 2 ;;
    --no-time-order) TIME_ORDER=0; shift ;;
    --baseline) BASELINE="$2"; shift 2 ;;
    --duckdb) DUCKDB_VERSION="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
REF="${DUCKDB_REFERENCE:-$ROOT/../shared/bench/duckdb_reference.py}"
[ -f "$REF" ] || { echo "DuckDB reference not found at $REF" >&2; exit 2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/da-target}"
cargo build --profile "$PROFILE" -q
BIN="$CARGO_TARGET_DIR/$PROFILE/diversion-audit"
VENV="$ROOT/bench/.venv"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
[ "$("$VENV/bin/python" -c 'import duckdb; print(duckdb.__version__)' 2>/dev/null)" = "$DUCKDB_VERSION" ] ||
  "$VENV/bin/pip" install -q "duckdb==$DUCKDB_VERSION"
DATA="$ROOT/bench/data"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export POLARS_MAX_THREADS="$THREADS" RAYON_NUM_THREADS="$THREADS"

# one measured run: appends "wall_s rss_mb" to $1
measure() {
  local into="$1"; shift
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" > "$WORK/stdout" 2> "$WORK/stderr" || {
    echo "failed: $*" >&2; cat "$WORK/stderr" >&2; exit 2; }
  awk '{printf "%s %.0f\n", $1, $2/1024}' "$WORK/time" >> "$into"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

{
  echo "# Benchmark results"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; threads $THREADS; $RUNS runs each, alternated; medians."
  echo "diversion-audit $("$BIN" --version | awk '{print $2}') (Cargo profile $PROFILE), DuckDB $("$VENV/bin/python" -c 'import duckdb; print(duckdb.__version__)'); $(date -u +%Y-%m-%d)."
  echo "The audit runs every rule and writes every output (report.html included); the reference runs its three SQL checks."
  echo
  if [ -n "$BASELINE" ]; then
    echo "Baseline (before): \`$BASELINE\`, run in the same alternation."
    echo
    echo "| rows | input | audit s | reference s | audit ÷ reference | audit rows/s | audit peak RSS MB | reference peak RSS MB | baseline s | audit ÷ baseline | baseline peak RSS MB | audit runs s | baseline runs s |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
  else
    echo "| rows | input | audit s | reference s | audit ÷ reference | audit rows/s | audit peak RSS MB | reference peak RSS MB |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|"
  fi
} > "$WORK/results.md"
STAGES=""
RATIO10=""
for N in $SIZES; do
  D="$DATA/$N"
  if [ ! -f "$D/cdr.csv" ] || [ ! -f "$D/cdr.parquet" ]; then
    echo "generating $N rows in $D (not timed)" >&2
    "$BIN" generate --rows "$N" --no-overlap --seed 42 --out "$D" 2>/dev/null
  fi
  ROWS=$(( $(wc -l < "$D/cdr.csv") - 1 ))
  KINDS="csv parquet"
  if [ "$N" = "10000000" ] && [ "$TIME_ORDER" = 1 ]; then
    # the same rows in start-time order, as switches that write calls as they end export them
    # (the generator writes each operator's calls together, which spares the audit a sort)
    if [ ! -f "$D/cdr-time-order.csv" ]; then
      (head -1 "$D/cdr.csv"; tail -n +2 "$D/cdr.csv" | LC_ALL=C sort -t, -k3,3 -S 2G) > "$D/cdr-time-order.csv.tmp"
      mv "$D/cdr-time-order.csv.tmp" "$D/cdr-time-order.csv"
    fi
    KINDS="$KINDS time-order.csv"
  fi
  # 100 M rows do not fit this machine's memory in one piece: they are scanned in operator parts
  PARTS=()
  if [ "$N" -ge 100000000 ]; then PARTS=(--partitions 10); fi
  for KIND in $KINDS; do
    IN="$D/cdr.$KIND"
    LABEL="$KIND"
    [ ${#PARTS[@]} -gt 0 ] && LABEL="$KIND, ${PARTS[1]} parts"
    [ "$KIND" = time-order.csv ] && IN="$D/cdr-time-order.csv" && LABEL="csv, time order"
    : > "$WORK/a"; : > "$WORK/r"; : > "$WORK/b"
    for i in $(seq "$RUNS"); do
      # with a baseline the two builds swap places every run (audit first on odd runs, baseline
      # first on even ones): the one right after the reference's run was measured slower
      if [ -n "$BASELINE" ] && [ $((i % 2)) = 0 ]; then
        measure "$WORK/b" "$BASELINE" scan "$IN" --joins "$D/joins.csv" --ip-country "$D/ip-country.csv" --out "$WORK/out-base" --quiet "${PARTS[@]}"
      fi
      measure "$WORK/a" "$BIN" scan "$IN" --joins "$D/joins.csv" --ip-country "$D/ip-country.csv" --out "$WORK/out" --quiet "${PARTS[@]}"
      if [ -n "$BASELINE" ] && [ $((i % 2)) = 1 ]; then
        measure "$WORK/b" "$BASELINE" scan "$IN" --joins "$D/joins.csv" --ip-country "$D/ip-country.csv" --out "$WORK/out-base" --quiet "${PARTS[@]}"
      fi
      measure "$WORK/r" "$VENV/bin/python" "$REF" "$IN" "$D/joins.csv" "$D/ip-country.csv" "$WORK/ref" --threads "$THREADS"
    done
    A=$(cut -d' ' -f1 "$WORK/a" | median); R=$(cut -d' ' -f1 "$WORK/r" | median)
    AM=$(cut -d' ' -f2 "$WORK/a" | median); RM=$(cut -d' ' -f2 "$WORK/r" | median)
    RATIO=$(awk -v a="$A" -v r="$R" 'BEGIN{printf "%.2f", a/r}')
    RPS=$(awk -v n="$ROWS" -v a="$A" 'BEGIN{printf "%.0f", n/a}')
    if [ -n "$BASELINE" ]; then
      B=$(cut -d' ' -f1 "$WORK/b" | median); BM=$(cut -d' ' -f2 "$WORK/b" | median)
      AB=$(awk -v a="$A" -v b="$B" 'BEGIN{printf "%.3f", a/b}')
      echo "| $ROWS | $LABEL | $A | $R | $RATIO | $RPS | $AM | $RM | $B | $AB | $BM | $(cut -d' ' -f1 "$WORK/a" | paste -sd' ') | $(cut -d' ' -f1 "$WORK/b" | paste -sd' ') |" >> "$WORK/results.md"
    else
      echo "| $ROWS | $LABEL | $A | $R | $RATIO | $RPS | $AM | $RM |" >> "$WORK/results.md"
    fi
    # the guard holds the generated CSV and Parquet inputs the issue names; time order is reported
    if [ "$N" = "10000000" ] && [ "$KIND" != time-order.csv ]; then RATIO10="$RATIO10 $RATIO"; fi
    STAGES="$STAGES
| $ROWS | $LABEL | $(python3 - "$WORK/out/timings.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["seconds"]
st = s["stages"]
# a partitioned scan loads, prepares and runs the per-operator rules part by part: "parts" (in the load column)
cells = [str(st.get(k, st.get("parts", "") if k == "load_cdr" else "")) for k in ["load_cdr", "load_joins", "enrich_ip", "callers", "prepare", "rules", "write", "total"]]
print(" | ".join(cells) + " | " + ", ".join(f"{k} {v}" for k, v in s["rules"].items()) + " |")
PY
)"
    echo "done: $N $LABEL audit ${A}s reference ${R}s" >&2
  done
done
{
  echo
  echo "Audit stages (seconds, last run, from timings.json):"
  echo
  echo "| rows | input | load CDR | load joins | IP countries | caller IDs (wait + columns) | prepare | rules (parallel) | write | total | per rule |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  echo "${STAGES#?}"
  echo
  echo "Reproduce: \`bench/run.sh --sizes \"$SIZES\" --runs $RUNS --threads $THREADS --profile $PROFILE --duckdb $DUCKDB_VERSION${BASELINE:+ --baseline $BASELINE}\`"
} >> "$WORK/results.md"
# the scale-out section bench/spark.sh measured, kept
if [ -f "$ROOT/bench/spark-results.md" ]; then { echo; cat "$ROOT/bench/spark-results.md"; } >> "$WORK/results.md"; fi
# and the card ledger's, bench/cards.sh
if [ -f "$ROOT/bench/cards-results.md" ]; then { echo; cat "$ROOT/bench/cards-results.md"; } >> "$WORK/results.md"; fi
cp "$WORK/results.md" "$ROOT/bench/results.md"
cat "$ROOT/bench/results.md"
for r in $RATIO10; do
  if awk -v r="$r" 'BEGIN{exit !(r > 1.0)}'; then
    echo "regression guard: the 10 M-row audit takes ${r}x the reference (> 1.0)" >&2
    exit 3
  fi
done
