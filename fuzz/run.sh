#!/usr/bin/env bash
# Runs fuzz targets for a fixed time each and summarises every run.
#
#   fuzz/run.sh SECONDS [TARGET...]             (all targets when none is named)
#   fuzz/run.sh --together SECONDS TARGET...    (the targets at once)
#
# Needs the nightly toolchain and cargo-fuzz (.ci/run installs both). Each
# target starts from its committed seeds (fuzz/seeds/<target>) and past
# findings (fuzz/regressions/<target>, if any) and grows
# fuzz/corpus/<target> (not committed). A crash, a timeout or an
# out-of-memory stops the run, is saved in fuzz/artifacts/<target>/ and
# makes this script exit non-zero. Logs: fuzz/logs/<target>.log.
#
# One after the other, each target has the machine to itself; --together
# runs them at once, so that their exec/s, measured under the same load
# for the same time, compare (README: "The two stateful targets").
set -euo pipefail

cd "$(dirname "$0")"
together=false
if [ "${1:-}" = --together ]; then
    together=true
    shift
fi
seconds=${1:?usage: fuzz/run.sh [--together] SECONDS [TARGET...]}
shift
if [ $# -eq 0 ]; then
    set -- $(cargo +nightly fuzz list)
fi

# How a target is built and run besides cargo-fuzz's defaults (which
# include AddressSanitizer). cluster_safety goes without it: every crate
# of the project forbids unsafe code, and the sanitizer made that target
# several times slower (README); `cluster` and the decoder targets
# keep it. Its own target directory, so the two builds do not evict each
# other.
build_flags() {
    case $1 in
        cluster_safety) echo --sanitizer none --target-dir target/unsanitized ;;
    esac
}

cargo +nightly fuzz build 2>&1 | tail -n 3
for target in "$@"; do
    flags=$(build_flags "$target")
    if [ -n "$flags" ]; then
        # shellcheck disable=SC2086 # flags are words
        cargo +nightly fuzz build $flags "$target" 2>&1 | tail -n 3
    fi
done
mkdir -p logs

# Runs one target; its exit status says whether it found something.
run() {
    local target=$1
    mkdir -p "corpus/$target"
    # Inputs that once were findings are replayed at the start, as regressions.
    local regressions=()
    if [ -d "regressions/$target" ]; then
        regressions=("regressions/$target")
    fi
    # -timeout: one input taking over 10 s is a finding (a hang).
    # shellcheck disable=SC2046 # flags are words
    cargo +nightly fuzz run $(build_flags "$target") "$target" \
        "corpus/$target" "${regressions[@]}" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        >"logs/$target.log" 2>&1
}

# Prints a target's summary (after its log's tail if it found something):
# coverage when the seeds were loaded and at the end, executions, exec/s.
report() {
    local target=$1 found=$2 log="logs/$1.log"
    local inited done_cov runs rate
    if $found; then
        failed+=("$target")
        tail -n 40 "$log"
    fi
    inited=$(grep -m1 -o 'INITED cov: [0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    done_cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || echo '?')
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    echo "fuzz: $target: ${runs:-?} executions, ${rate:-?} exec/s, coverage ${inited} -> ${done_cov}"
}

failed=()
if $together; then
    echo "fuzz: $* at once for ${seconds}s"
    pids=()
    for target in "$@"; do
        run "$target" &
        pids+=($!)
    done
    i=0
    for target in "$@"; do
        if wait "${pids[$i]}"; then report "$target" false; else report "$target" true; fi
        i=$((i + 1))
    done
else
    for target in "$@"; do
        echo "fuzz: $target for ${seconds}s"
        if run "$target"; then report "$target" false; else report "$target" true; fi
    done
fi

if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz: FINDINGS in: ${failed[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi
