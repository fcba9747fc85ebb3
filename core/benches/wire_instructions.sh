#!/usr/bin/env bash
# Instructions per call of the wire bench's cases, counted by valgrind, so
# the machine's load does not change the figures:
# (instructions of N calls - instructions of none) / N.
#
#   core/benches/wire_instructions.sh [N]     (from the workspace root)
set -euo pipefail
n=${1:-200}
exe=$(cargo bench -p tq-core --bench wire --no-run 2>&1 |
  sed -n 's/.*Executable.*(\(.*\))$/\1/p')
count() {
  TQ_WIRE_REPEAT="$1" valgrind --tool=cachegrind --cache-sim=no \
    --cachegrind-out-file=/dev/null "$exe" 2>&1 |
    sed -n 's/.*I *refs: *//p' | tr -d ,
}
for case in prepare get-share state reconfigure; do
  for mode in "" ":encode"; do
    none=$(count "$case:0$mode")
    many=$(count "$case:$n$mode")
    echo "$case${mode:+, then encode}: $(((many - none) / n)) instructions"
  done
done
