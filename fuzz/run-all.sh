#!/usr/bin/env bash
# Run every fuzz target one after another (never in parallel), each for
# RUNS executions (default 10,000,000), inside an empty network namespace.
# Usage: fuzz/run-all.sh [RUNS] [extra cargo-fuzz flags, e.g. -s none]
set -euo pipefail
cd "$(dirname "$0")"
RUNS=${1:-10000000}
shift || true
export RUSTC_BOOTSTRAP=1
mkdir -p logs
# Build first (with the network, in case a dependency must be fetched).
cargo fuzz build "$@"
for t in host_and_rules socks5_handshake http_request_head request_framing; do
    mkdir -p "corpus/$t"
    dict=()
    case $t in http_request_head | request_framing) dict=(-dict=dicts/http.dict) ;; esac
    echo "== $t: $RUNS runs =="
    # `unshare -n` (root, or `unshare -rn` as a user): the target cannot reach
    # any network even if a code path tried to connect.
    unshare -n cargo fuzz run "$@" "$t" "corpus/$t" "seeds/$t" -- \
        -runs="$RUNS" -print_final_stats=1 "${dict[@]}" 2>&1 | tee "logs/$t.log" | grep -E "DONE|stat::|Done|ERROR|panicked|SUMMARY" || true
done
