#!/usr/bin/env bash
# The honest throughput figure: wrk (one thread) creates customers over HTTP
# on `switchboard serve` (release build, SQLite as shipped), nginx (one
# worker) receives the deliveries, and the same wrk → nginx raw POST rate is
# measured in the same run as the baseline. Load generator and receiver are
# each faster than Switchboard, so the ratio is Switchboard's.
#
# Usage: bench/wrk.sh [seconds] [connections]   (needs wrk and nginx: apt-get install wrk nginx-light)
# SWITCHBOARD_BIN=path runs another build (to compare two in one session).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}
command -v wrk >/dev/null && command -v nginx >/dev/null || {
    echo "needs wrk and nginx (apt-get install wrk nginx-light)" >&2
    exit 1
}
# shellcheck source=bench/receiver.sh
source bench/receiver.sh
sleep 0.2

rate() { sed -n 's/^Requests\/sec: *//p'; }
raw=$(wrk -t1 -c"$connections" -d"${seconds}s" -s bench/wrk/post.lua "http://127.0.0.1:$receiver_port/hook" | rate)

export SWITCHBOARD_BENCH_KEY=sk_test_wrkbench000000000000
SWITCHBOARD_LOG=warn "$bin" serve --addr 127.0.0.1:0 --data-dir "$work/data" \
    --test-key "$SWITCHBOARD_BENCH_KEY" > "$work/serve.out" &
until grep -q http:// "$work/serve.out" 2>/dev/null; do sleep 0.1; done
base=$(grep -o 'http://[0-9.:]*' "$work/serve.out" | head -1)
curl -sf -u "$SWITCHBOARD_BENCH_KEY:" "$base/v1/webhook_endpoints" \
    -d url="http://127.0.0.1:$receiver_port/hook" -d 'enabled_events[]=*' >/dev/null

delivered() {
    curl -sf "$base/metrics" | awk '/^switchboard_deliveries_total\{.*succeeded/ {n += $2} END {print n + 0}'
}
start=$(date +%s.%N)
out=$(wrk -t1 -c"$connections" -d"${seconds}s" -s bench/wrk/create.lua "$base/v1/customers")
created=$(echo "$out" | rate)
requests=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
errors=$(echo "$out" | sed -n 's/^ *Non-2xx or 3xx responses: *//p')
# Every acknowledged create's event is delivered: wait for the last one.
until [ "$(delivered)" -ge "$((requests - ${errors:-0}))" ]; do sleep 0.05; done
end=$(date +%s.%N)
delivered_rate=$(python3 -c "print(round($(delivered) / ($end - $start)))")
python3 - "$raw" "$created" "$delivered_rate" "$connections" <<'PY'
import sys
raw, created, delivered, conns = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
print(f"wrk -t1 -c{conns} → nginx (1 worker), raw POST: {raw:,.0f}/s")
print(f"wrk -t1 -c{conns} → switchboard serve → nginx: {created:,.0f} created/s, {delivered:,.0f} delivered/s")
print(f"ratio (delivered / raw): {delivered / raw:.3f}   target: >= 20,000/s and >= 0.15")
PY
