#!/usr/bin/env bash
# Makes a PostgreSQL server reachable for the test suite (the store's
# conformance suite and the multi-node tests) and prints the URL to use.
#
#  1. one already answering on 127.0.0.1:5432 with trust auth: used as is;
#  2. else the installed Debian cluster, started (pg_ctlcluster);
#  3. else a throwaway cluster (trust auth) under target/postgres on port 5433,
#     installing the server from Debian's packages first if it is missing.
# Database `test` is created if absent. Usage: url=$(scripts/postgres.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

works() { psql "$1" -qtAc 'SELECT 1' >/dev/null 2>&1; }
ensure_test_db() {
    local base=$1
    if ! works "$base/test"; then
        psql "$base/postgres" -qc 'CREATE DATABASE test' >&2
    fi
    echo "$base/test"
}

default=postgres://postgres@127.0.0.1:5432
if works "$default/postgres"; then
    ensure_test_db "$default"
    exit 0
fi

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "installing PostgreSQL (Debian package postgresql)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
bin=/usr/lib/postgresql/$version/bin

if [ -d "/etc/postgresql/$version/main" ]; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 2>/dev/null || true
    for _ in $(seq 30); do
        pg_isready -h 127.0.0.1 -p 5432 -q && break
        sleep 1
    done
    if works "$default/postgres"; then
        ensure_test_db "$default"
        exit 0
    fi
fi

# A throwaway cluster of our own: trust auth on loopback, port 5433.
dir=$PWD/target/postgres
run_as=()
if [ "$(id -u)" = 0 ]; then
    run_as=(runuser -u postgres --) # initdb refuses to run as root
fi
if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    "${run_as[@]}" "$bin/initdb" -D "$dir" -A trust -U postgres >&2
fi
if ! pg_isready -h 127.0.0.1 -p 5433 -q; then
    "${run_as[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p 5433 -k /tmp" start >&2
fi
ensure_test_db postgres://postgres@127.0.0.1:5433
