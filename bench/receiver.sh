# Sourced by bench/wrk.sh and bench/callgrind.sh: the build to measure, a
# scratch dir, and nginx (one worker, answering 200 to anything) as the
# webhook receiver on $receiver_port, all cleaned up on exit.
bin=${SWITCHBOARD_BIN:-target/release/switchboard}
[ -n "${SWITCHBOARD_BIN:-}" ] || cargo build --release -q -p switchboard
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; nginx -p "$work" -c nginx.conf -s stop 2>/dev/null || true; rm -rf "$work"' EXIT
receiver_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$receiver_port reuseport;
        location / { return 200 "ok"; }
    }
}
CONF
nginx -p "$work" -c nginx.conf
