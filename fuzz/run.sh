#!/usr/bin/env bash
# Runs fuzz targets for a fixed time each and summarises every run.
#
#   fuzz/run.sh SECONDS [TARGET...]      (all targets when none is named)
#
# Needs the nightly toolchain and cargo-fuzz (.ci/run installs both). Each
# target starts from its committed seeds (fuzz/seeds/<target>) and past
# findings (fuzz/regressions/<target>, if any) and grows
# fuzz/corpus/<target> (not committed). A crash, a timeout or an
# out-of-memory stops the run, is saved in fuzz/artifacts/<target>/ and
# makes this script exit non-zero. Logs: fuzz/logs/<target>.log.
set -euo pipefail

cd "$(dirname "$0")"
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
if [ $# -eq 0 ]; then
    set -- $(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build 2>&1 | tail -n 3
mkdir -p logs
failed=()
for target in "$@"; do
    mkdir -p "corpus/$target"
    log="logs/$target.log"
    echo "fuzz: $target for ${seconds}s"
    # -timeout: one input taking over 10 s is a finding (a hang).
    # Inputs that once were findings are replayed at the start, as regressions.
    regressions=()
    if [ -d "regressions/$target" ]; then
        regressions=("regressions/$target")
    fi
    if ! cargo +nightly fuzz run "$target" "corpus/$target" "${regressions[@]}" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        failed+=("$target")
        tail -n 40 "$log"
    fi
    # Coverage when the seeds were loaded, and at the end; executions.
    inited=$(grep -m1 -o 'INITED cov: [0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    done_cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || echo '?')
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    echo "fuzz: $target: ${runs:-?} executions, ${rate:-?} exec/s, coverage ${inited} -> ${done_cov}"
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz: FINDINGS in: ${failed[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi
