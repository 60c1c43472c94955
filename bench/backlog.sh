#!/usr/bin/env bash
# A backlog drained by one node, measured on the node alone: an API-only
# `switchboard serve --role api` queues about N deliveries (N/20 customers
# created by wrk, each event going to 20 endpoints on nginx; a few more
# while wrk stops) with nothing delivering; then a `--role worker` node on
# the same data dir delivers them all. Prints
# the drain rate beside wrk → nginx raw POST in the same run, and the
# worker's peak RSS (VmHWM: the node process only, not the load generator).
#
# Usage: bench/backlog.sh [deliveries]   (default 1000000; needs wrk and nginx)
# SWITCHBOARD_BIN=path runs another build.
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-1000000}
endpoints=20
command -v wrk >/dev/null && command -v nginx >/dev/null || {
    echo "needs wrk and nginx (apt-get install wrk nginx-light)" >&2
    exit 1
}
# shellcheck source=bench/receiver.sh
source bench/receiver.sh
sleep 0.2
rate() { sed -n 's/^Requests\/sec: *//p'; }
raw=$(wrk -t1 -c32 -d5s -s bench/wrk/post.lua "http://127.0.0.1:$receiver_port/hook" | rate)

export SWITCHBOARD_BENCH_KEY=sk_test_backlogbench0000000000
creates=$(( (total + endpoints - 1) / endpoints ))
serve() { # $1: role; prints the node's address once it listens
    SWITCHBOARD_LOG=warn "$bin" serve --role "$1" --addr 127.0.0.1:0 --data-dir "$work/data" \
        --test-key "$SWITCHBOARD_BENCH_KEY" > "$work/$1.out" 2>&1 &
    echo $! > "$work/$1.pid"
    until grep -q http:// "$work/$1.out" 2>/dev/null; do sleep 0.1; done
}
serve api
base=$(grep -o 'http://[0-9.:]*' "$work/api.out" | head -1)
for i in $(seq 1 $endpoints); do
    curl -sf -u "$SWITCHBOARD_BENCH_KEY:" "$base/v1/webhook_endpoints" \
        -d url="http://127.0.0.1:$receiver_port/hook/$i" -d 'enabled_events[]=*' >/dev/null
done
# Counts rows of the node's database (read-only, beside the running node).
count() {
    python3 - "$work/data/switchboard.db" "$1" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30)
print(c.execute(sys.argv[2]).fetchone()[0])
PY
}
pending() { count "SELECT count(*) FROM deliveries WHERE state = 0"; }
start=$(date +%s.%N)
wrk -t1 -c32 -d1h -s bench/wrk/create.lua "$base/v1/customers" > "$work/create.out" &
wrk_pid=$!
until [ "$(count "SELECT count(*) FROM events")" -ge "$creates" ]; do sleep 0.5; done
kill -INT "$wrk_pid"
wait "$wrk_pid" || true
queued_s=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
kill -TERM "$(cat "$work/api.pid")"
wait "$(cat "$work/api.pid")" || true
queued=$(pending)
start=$(date +%s.%N)
serve worker
pid=$(cat "$work/worker.pid")
hwm=0
while [ "$(pending)" -gt 0 ]; do
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    sleep 0.5
done
end=$(date +%s.%N)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
python3 - "$queued" "$queued_s" "$start" "$end" "$hwm" "$raw" <<'PY'
import sys
queued, queued_s, start, end, hwm, raw = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
rate = queued / (end - start)
print(f"{queued:,} deliveries queued by an API-only node in {queued_s} s")
print(f"drained by one worker node: {rate:,.0f}/s (from its start to the last delivery), node peak RSS {hwm / 1024:.0f} MiB")
print(f"wrk -t1 -c32 → nginx raw POST, same run: {raw:,.0f}/s; ratio {rate / raw:.3f}")
print("targets: >= 10,000/s drained, node RSS <= 200 MB")
PY
