#!/usr/bin/env bash
# End-to-end benchmark: `technic scan` over 5000 CSV files × 504 bars, process start to exit.
# Usage: bash benches/e2e_csv.sh [DIR] [RUNS]   (writes the CSV files to DIR once, default /tmp/technic-csv5000)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/technic-csv5000}
runs=${2:-7}
cargo build --release --quiet --example export_csv
cargo build --release --quiet -p technic-cli
if [ ! -f "$dir/universe.csv" ]; then
  ./target/release/examples/export_csv "$dir" 5000 504
fi
echo "data: $(du -sh "$dir" | cut -f1) in $(ls "$dir" | wc -l) files"
for _ in $(seq "$runs"); do
  /usr/bin/time -f "%e s wall, %U s user, %S s sys, %M KB peak RSS" \
    ./target/release/technic scan --provider "csv:$dir" --quiet --no-store > /dev/null
done 2>&1 | sort -n | tee target/technic-e2e.txt
echo "median without a store: $(sed -n "$(( (runs + 1) / 2 ))p" target/technic-e2e.txt)"
# With the default store (a fresh SQLite file per run, as a first scan on a new machine): local CSV files
# are read directly, never copied into it; the store records the scan run and its results.
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
for i in $(seq "$runs"); do
  /usr/bin/time -f "%e s wall, %U s user, %S s sys, %M KB peak RSS" \
    ./target/release/technic scan --provider "csv:$dir" --quiet --store "$store/run$i.db" > /dev/null
done 2>&1 | sort -n | tee target/technic-e2e-store.txt
echo "median with the store: $(sed -n "$(( (runs + 1) / 2 ))p" target/technic-e2e-store.txt)"
