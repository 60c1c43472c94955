#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for a bounded time, seeded
# with the committed corpus (fuzz/corpus/<target>, never written to: what
# libFuzzer finds goes under target/fuzz-corpus). A crash fails the script and
# leaves its input in fuzz/artifacts/<target>/. Usage: scripts/fuzz.sh [seconds per target]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (crates.io)" >&2
    cargo install --quiet --locked cargo-fuzz --version 0.13.2
fi
# cargo-fuzz asks for nightly-only flags (sanitizers, coverage); this lets the
# one stable toolchain take them.
export RUSTC_BOOTSTRAP=1

targets=$(cargo fuzz list)
cargo fuzz build >&2
for target in $targets; do
    found=target/fuzz-corpus/$target
    mkdir -p "$found"
    echo "fuzzing $target for ${seconds}s" >&2
    cargo fuzz run "$target" "$found" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 2>&1 |
        { grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|Done)|panicked|Crash|ERROR|No such' >&2 || true; }
done
