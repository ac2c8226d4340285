#!/usr/bin/env bash
# Service figures for docs/BENCHMARKS.md, on 127.0.0.1 only:
#  1. 100 scans of the 5000-symbol demo universe (`top: 0`) submitted at once to `technic serve` with a
#     store: how many were accepted, time until all completed, peak RSS of the server (VmHWM).
#  2. Requests per second for a page of a finished scan's results (`results?limit=50`) and for `/healthz`,
#     with wrk (Debian package `wrk`), 2 threads and 50 connections for 8 s each.
# Usage: bash benches/service.sh   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p technic-cli --quiet
command -v wrk > /dev/null || { echo "install wrk (apt-get install wrk) for the throughput part"; }
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
./target/release/technic serve --store "$dir/s.db" --no-warm --demo-symbols 5000 --port "$port" > "$dir/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$port/healthz" > /dev/null 2>&1 && break; sleep 0.2; done
base="http://127.0.0.1:$port/api/v1"
start=$(date +%s.%N)
accepted=0
for _ in $(seq 1 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{"top":0}' "$base/scans")
  [ "$code" = 202 ] && accepted=$((accepted + 1))
done
while true; do
  running=$(curl -s "$base/scans?limit=200" | python3 -c 'import sys, json; print(sum(s["state"] == "running" for s in json.load(sys.stdin)))')
  [ "$running" = 0 ] && break
  sleep 0.5
done
end=$(date +%s.%N)
complete=$(curl -s "$base/scans?limit=200" | python3 -c 'import sys, json; print(sum(s["state"] == "complete" for s in json.load(sys.stdin)))')
echo "100 scans submitted: $accepted accepted, $complete complete, all done in $(python3 -c "print(round($end - $start, 1))") s"
grep -E "VmHWM" /proc/$pid/status
id=$(curl -s "$base/scans?limit=1" | python3 -c 'import sys, json; print(json.load(sys.stdin)[0]["id"])')
if command -v wrk > /dev/null; then
  echo "results?limit=50:"; wrk -t2 -c50 -d8s "$base/scans/$id/results?limit=50" | grep -E "Requests/sec|Latency"
  echo "healthz:"; wrk -t2 -c50 -d8s "http://127.0.0.1:$port/healthz" | grep -E "Requests/sec|Latency"
fi
