#!/usr/bin/env bash
# Scale-out benchmark: the Spark job (spark/, local mode on this machine) against the native scan,
# whole and in operator parts (--partitions), on the inputs bench/run.sh uses (bench/data/N).
# Writes bench/spark-results.md, which bench/run.sh carries into bench/results.md (and this script
# updates there too).
#
# usage: bench/spark.sh [--sizes "1000000 10000000"] [--with-100m] [--profile dist] [--driver-memory 14g]
#                       [--spark-max-rows N]   (sizes above N: the native runs and normalize only)
#
# Per size, one run each (a Spark run at 10 M rows takes minutes; its spread is in the notes):
#   native whole scan (not at 100 M rows: they do not fit this machine's memory in one piece)
#   native --partitions P (2 at 1 M, 4 at 10 M, 10 at 100 M)
#   normalize: the CSV cut into C files by lines (1 file up to 10 M rows, 10 at 100 M; cutting is
#     not timed), each normalised by its own `normalize` run one after the other, as hosts would
#   the Spark job, local[cores], over the normalised parts; peak memory is the driver's Python and
#     its JVM together (bench/treepeak.py)
#   parity: the Spark findings against the native ones (rule, operator, subject, window, severity,
#     score, sentence, evidence)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ARGS="$*"
SIZES="1000000 10000000"
PROFILE=dist
DRIVER_MEMORY=14g
SPARK_MAX=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) SIZES="$2"; shift 2 ;;
    --with-100m) SIZES="$SIZES 100000000"; shift ;;
    --profile) PROFILE="$2"; shift 2 ;;
    --driver-memory) DRIVER_MEMORY="$2"; shift 2 ;;
    --spark-max-rows) SPARK_MAX="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/da-target}"
cargo build --profile "$PROFILE" -q
BIN="$CARGO_TARGET_DIR/$PROFILE/diversion-audit"
PY="$(bash spark/venv.sh)"
CORES=$(nproc)
DATA="$ROOT/bench/data"
# BENCH_WORK keeps the outputs (canonical parts, both engines' files) for a look afterwards
if [ -n "${BENCH_WORK:-}" ]; then WORK="$BENCH_WORK"; mkdir -p "$WORK"; else WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT; fi
OUT="$ROOT/bench/spark-results.md"
: > "$WORK/notes"

# one measured run: appends "wall_s peak_mb" to $1
measure() {
  local into="$1"; shift
  python3 "$ROOT/bench/treepeak.py" "$into" -- "$@" > "$WORK/stdout" 2> "$WORK/stderr" || {
    echo "failed: $*" >&2; tail -c 3000 "$WORK/stderr" >&2; exit 2; }
}

{
  echo "## Scale-out: the Spark job against the native scan"
  echo
  echo "Machine: $CORES cores, $(free -g | awk '/Mem:/{print $2}') GiB; one run each; $(date -u +%Y-%m-%d)."
  echo "diversion-audit $("$BIN" --version | awk '{print $2}') (profile $PROFILE); PySpark $("$PY" -c 'import pyspark; print(pyspark.__version__)') in local[$CORES] mode, driver memory $DRIVER_MEMORY, Java $(java -version 2>&1 | awk -F'"' '/version/{print $2}'). Command: \`bench/spark.sh $ARGS\`."
  echo "Inputs: bench/data/N/cdr.csv, joins.csv, ip-country.csv (the guard's generated inputs). \"per core\" is rows ÷ seconds ÷ $CORES."
  echo
  echo "| rows | run | s | peak RSS MB | rows/s per core | findings | same findings as native |"
  echo "|---:|---|---:|---:|---:|---:|---|"
} > "$WORK/spark.md"

row() { # rows label file findings same
  local s m
  s=$(awk '{print $1}' "$3"); m=$(awk '{print $2}' "$3")
  echo "| $1 | $2 | $s | $m | $(awk -v n="$1" -v s="$s" -v c="$CORES" 'BEGIN{printf "%.0f", n/s/c}') | $4 | $5 |" >> "$WORK/spark.md"
}
count() { wc -l < "$1/findings.jsonl" | tr -d ' '; }

for N in $SIZES; do
  D="$DATA/$N"
  if [ ! -f "$D/cdr.csv" ]; then
    echo "generating $N rows in $D (not timed)" >&2
    "$BIN" generate --rows "$N" --no-overlap --seed 42 --out "$D" 2>/dev/null
  fi
  ROWS=$(( $(wc -l < "$D/cdr.csv") - 1 ))
  case "$N" in
    1000000) PARTS=2; CHUNKS=1; SHUFFLE=8 ;;
    10000000) PARTS=4; CHUNKS=1; SHUFFLE=16 ;;
    *) PARTS=10; CHUNKS=10; SHUFFLE=64 ;;
  esac
  SIDE=(--joins "$D/joins.csv" --ip-country "$D/ip-country.csv")
  REFDIR=""
  if [ "$N" -lt 100000000 ]; then
    : > "$WORK/t"; measure "$WORK/t" "$BIN" scan "$D/cdr.csv" "${SIDE[@]}" --out "$WORK/native" --quiet
    row "$ROWS" "native scan, whole" "$WORK/t" "$(count "$WORK/native")" "—"
    REFDIR="$WORK/native"
  fi
  : > "$WORK/t"; measure "$WORK/t" "$BIN" scan "$D/cdr.csv" "${SIDE[@]}" --out "$WORK/native-parts" --quiet --partitions "$PARTS"
  row "$ROWS" "native scan, --partitions $PARTS" "$WORK/t" "$(count "$WORK/native-parts")" "—"
  [ -n "$REFDIR" ] || REFDIR="$WORK/native-parts"
  # normalize, one run per file as hosts would
  rm -rf "$WORK/chunks" "$WORK/canonical"; mkdir -p "$WORK/chunks"
  if [ "$CHUNKS" = 1 ]; then
    ln -s "$D/cdr.csv" "$WORK/chunks/cdr-00.csv"
  else
    # whole lines, the header in every file (not timed; the first piece has it already)
    split -n "l/$CHUNKS" -d -a 2 --additional-suffix=.body "$D/cdr.csv" "$WORK/chunks/cdr-"
    for f in "$WORK"/chunks/*.body; do
      if [ "$f" = "$WORK/chunks/cdr-00.body" ]; then mv "$f" "${f%.body}.csv"; continue; fi
      (head -1 "$D/cdr.csv"; cat "$f") > "${f%.body}.csv" && rm "$f"
    done
  fi
  : > "$WORK/n"
  for f in "$WORK"/chunks/cdr-*.csv; do
    measure "$WORK/n" "$BIN" normalize "$f" "${SIDE[@]}" --out "$WORK/canonical" --quiet
  done
  awk '{s+=$1; if ($2>m) m=$2} END {printf "%.2f %d\n", s, m}' "$WORK/n" > "$WORK/t"
  row "$ROWS" "normalize ($CHUNKS file(s), one after another)" "$WORK/t" "—" "—"
  if [ "$SPARK_MAX" != 0 ] && [ "$N" -gt "$SPARK_MAX" ]; then
    echo "| $ROWS | Spark job: not run (--spark-max-rows $SPARK_MAX) | — | — | — | — | — |" >> "$WORK/spark.md"
    echo "Measured at $ROWS rows on $(date -u +%Y-%m-%d) by \`bench/spark.sh $ARGS\`." >> "$WORK/notes"
    continue
  fi
  : > "$WORK/t"
  measure "$WORK/t" "$PY" spark/audit.py --master "local[$CORES]" --shuffle-partitions "$SHUFFLE" \
    --conf "spark.driver.memory=$DRIVER_MEMORY" --conf "spark.local.dir=$WORK/spark-tmp" \
    --canonical "$WORK/canonical" --joins "$WORK/canonical/_joins" --out "$WORK/spark"
  SAME=$("$PY" - "$REFDIR/findings.jsonl" "$WORK/spark/findings.jsonl" <<'PY'
import json, sys
def load(p):
    out = {}
    for line in open(p):
        f = json.loads(line)
        out[(f["rule"], f["operator_id"], f["subject"], f["window_start"], f["window_end"])] = f
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
bad = len(set(a) ^ set(b))
for k in set(a) & set(b):
    x, y = a[k], b[k]
    if x["severity"] != y["severity"] or abs(x["score"] - y["score"]) > 1e-6 or x["summary"] != y["summary"] or x["evidence"] != y["evidence"]:
        bad += 1
print("yes" if bad == 0 else f"no: {bad} differ")
PY
)
  row "$ROWS" "Spark job, local[$CORES] (canonical Parquet in)" "$WORK/t" "$(count "$WORK/spark")" "$SAME"
  echo "Spark stage seconds at $ROWS rows: $("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$WORK/spark/run.json")" >> "$WORK/notes"
  echo "Measured at $ROWS rows on $(date -u +%Y-%m-%d) by \`bench/spark.sh $ARGS\`." >> "$WORK/notes"
  du -sb "$WORK/canonical" | awk -v n="$ROWS" '{printf "Canonical Parquet at %d rows: %.0f MB (%.1f bytes a row).\n", n, $1/1e6, $1/n}' >> "$WORK/notes"
done
{ echo; cat "$WORK/notes" | sed 's/^/- /'; } >> "$WORK/spark.md"
# the rows and notes of sizes this run did not measure are kept from the last results
if [ -f "$OUT" ]; then
  python3 - "$OUT" "$WORK/spark.md" "$SIZES" <<'PY'
import re, sys
old, new, sizes = open(sys.argv[1]).read().splitlines(), open(sys.argv[2]).read().splitlines(), sys.argv[3].split()
def size_of(line):
    m = re.match(r"\| (\d+) \|", line) or re.search(r" at (\d+) rows", line)
    return m.group(1) if m else None
def measured(n):  # a table size (rows written) against the sizes asked for (rows requested)
    return any(abs(int(n) - int(s)) <= int(s) // 100 for s in sizes)
keep_rows = [l for l in old if l.startswith("| ") and size_of(l) and not measured(size_of(l))]
keep_notes = [l for l in old if l.startswith("- ") and size_of(l) and not measured(size_of(l))]
out, done = [], False
for l in new:
    if l.startswith("| ") and size_of(l) and not done:
        out += keep_rows
        done = True
    out.append(l)
out += keep_notes
rows = [l for l in out if l.startswith("| ") and size_of(l)]
rows.sort(key=lambda l: int(size_of(l)))
it = iter(rows)
out = [next(it) if (l.startswith("| ") and size_of(l)) else l for l in out]
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY
fi
cp "$WORK/spark.md" "$OUT"
# bench/results.md: the native guard's tables, then this section
if [ -f "$ROOT/bench/results.md" ]; then
  awk '/^## Scale-out: the Spark job/{exit} {print}' "$ROOT/bench/results.md" > "$WORK/results.md"
  cat "$OUT" >> "$WORK/results.md"
  cp "$WORK/results.md" "$ROOT/bench/results.md"
fi
cat "$OUT"
