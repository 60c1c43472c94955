#!/usr/bin/env bash
# Instructions per event, created over HTTP and delivered (signed, to nginx),
# counted by callgrind for the whole `switchboard serve` process: the stable
# figure on a noisy machine (the same binary and input give the same count to
# within a fraction of a percent). A run with one event is subtracted, so
# start-up and what happens once (schema creation, the first delivery's
# HTTP client, the embedded Stripe schema parsed on first use) do not count.
#
# Usage: bench/callgrind.sh [events]   (needs valgrind and nginx); the profiles
# stay in target/callgrind/ for callgrind_annotate.
# SWITCHBOARD_BIN=path counts another build.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-2000}
# shellcheck source=bench/receiver.sh
source bench/receiver.sh
key=sk_test_callgrind00000000000

# One run: $1 events; prints callgrind's instruction total.
count() {
    local n=$1 dir="$work/run$1"
    mkdir -p "$dir"
    SWITCHBOARD_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" \
        "$bin" serve --addr 127.0.0.1:0 --data-dir "$dir/data" --test-key "$key" \
        > "$dir/serve.out" 2> "$dir/valgrind.err" &
    local pid=$!
    until grep -q http:// "$dir/serve.out" 2>/dev/null; do sleep 0.2; done
    local base
    base=$(grep -o 'http://[0-9.:]*' "$dir/serve.out" | head -1)
    python3 - "$base" "$key" "$n" "$receiver_port" <<'PY'
import http.client, sys, time, urllib.parse
base, key, n, port = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
host = urllib.parse.urlparse(base).netloc
c = http.client.HTTPConnection(host)
auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-www-form-urlencoded"}
def post(path, body):
    c.request("POST", path, body, auth)
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
post("/v1/webhook_endpoints", f"url=http://127.0.0.1:{port}/hook&enabled_events[]=*")
for i in range(n):
    post("/v1/customers", f"name=Customer+{i}&email=c{i}%40example.com")
def delivered():
    c.request("GET", "/metrics"); r = c.getresponse(); text = r.read().decode()
    return sum(float(l.split()[-1]) for l in text.splitlines()
               if l.startswith("switchboard_deliveries_total") and "succeeded" in l)
while delivered() < n:
    time.sleep(0.2)
PY
    kill -TERM "$pid"
    wait "$pid" || true
    mkdir -p target/callgrind
    cp "$dir/cg.out" "target/callgrind/serve-$n.out"
    sed -n 's/^summary: //p' "$dir/cg.out"
}
one=$(count 1)
busy=$(count "$events")
python3 -c "
one, busy, n = $one, $busy, $events
print(f'{n} events created over HTTP and delivered: {busy:,} instructions; a run with one event: {one:,}')
print(f'instructions per event (create + deliver): {(busy - one) / (n - 1):,.0f}')"
