#!/usr/bin/env bash
# Runs Switchboard's whole test suite: unit, integration, crash-safety, the
# store suite on SQLite and PostgreSQL, several nodes on one database, and
# the official clients' compatibility suites, then the fuzz targets for 20 s
# each (SWITCHBOARD_FUZZ_SECONDS; 0 skips). Usage: scripts/test.sh [cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

venv=compat/.venv
if ! "$venv/bin/python" -c 'import stripe, sys, prometheus_client; sys.exit(stripe.VERSION != "16.1.0")' 2>/dev/null; then
    echo "preparing $venv with the official SDKs (compat/requirements.txt)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r compat/requirements.txt
fi

# The official stripe-node SDK and Stripe CLI, pinned in their package files.
# (`npm install`, not `npm ci`: npm 11 writes the CLI's lock file without the
# other platforms' optional binaries and then refuses it in `ci`.)
for dir in compat/node compat/cli compat/schema compat/dashboard; do
    if [ ! -d "$dir/node_modules" ]; then
        echo "installing $dir (npm install)" >&2
        npm install --prefix "$dir" --no-audit --no-fund --no-save --silent
    fi
done

# Debian's Chromium for the dashboard's browser test (playwright-core drives it).
if ! command -v chromium >/dev/null; then
    echo "installing Debian's chromium for the dashboard's browser test" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq chromium >&2
fi

# PostgreSQL for the store's conformance suite and the multi-node tests:
# the one on 127.0.0.1:5432, started or replaced by a throwaway cluster if need be.
if [ -z "${SWITCHBOARD_TEST_DATABASE_URL:-}" ]; then
    SWITCHBOARD_TEST_DATABASE_URL=$(scripts/postgres.sh)
    export SWITCHBOARD_TEST_DATABASE_URL
fi

cargo test --workspace --all-features "$@"

# The fuzz targets (fuzz/), for a bounded time, on a full run only.
if [ $# -eq 0 ] && [ "${SWITCHBOARD_FUZZ_SECONDS:-20}" != 0 ]; then
    scripts/fuzz.sh "${SWITCHBOARD_FUZZ_SECONDS:-20}"
fi
