#!/usr/bin/env bash
# Fuzz the format sniffers, row parsers and the whole loader for a bounded time (not run in CI).
#   fuzz/run.sh [SECONDS_PER_TARGET]      default 600
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Seeds: every sample log
# and test fixture. Crashes land in fuzz/artifacts/<target>/; the corpus grows in fuzz/corpus/.
set -euo pipefail
SECS=${1:-600}
cd "$(dirname "$0")"
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$HOME/.cache/da-fuzz-target}
for t in sniff_and_split load_file; do
  mkdir -p "corpus/$t"
  find ../sample_logs/cdr ../sample_logs/joins ../tests/data -maxdepth 2 -type f \
    \( -name '*.csv' -o -name '*.tsv' -o -name '*.gz' -o -name '*.zst' -o -name '*.jsonl' -o -name '*.ndjson' \) \
    -size -2M -exec cp -n {} "corpus/$t/" \;
done
# -s none: Rust is memory-safe; we are hunting panics, hangs and blow-ups, and the Polars build with
# AddressSanitizer is several times slower to build and run.
cargo +nightly fuzz build -s none --release
for t in sniff_and_split load_file; do
  echo "== $t: ${SECS}s" >&2
  cargo +nightly fuzz run -s none --release "$t" "corpus/$t" -- \
    -max_total_time="$SECS" -max_len=65536 -timeout=20 -rss_limit_mb=4096 -print_final_stats=1
done
