#!/usr/bin/env python3
"""Print the medians of the last criterion run as a Markdown table, with the
ratio of tq-core's median to the other crate's in the same group.

Usage: summarize.py [TARGET_DIR]   (default: $CARGO_TARGET_DIR, else ./target)

Reads TARGET_DIR/criterion/**/new/{benchmark,estimates}.json; standard
library only. A ratio below 1 means tq-core is faster.
"""

import json
import os
import re
import sys
from pathlib import Path

OURS = "tq-core"
# Operations in the order the benches run them.
OPERATIONS = ["split", "combine", "compute_share", "lrtq_combine"]


def load_medians(criterion_dir):
    """{group: {function: median in ns}} for every benchmark with results."""
    groups = {}
    for meta_path in criterion_dir.glob("**/new/benchmark.json"):
        estimates_path = meta_path.with_name("estimates.json")
        if not estimates_path.is_file():
            continue
        meta = json.loads(meta_path.read_text())
        estimates = json.loads(estimates_path.read_text())
        median = estimates["median"]["point_estimate"]
        groups.setdefault(meta["group_id"], {})[meta["function_id"]] = median
    return groups


def group_order(group):
    """Operation order first, then larger (n, k) first."""
    operation, _, params = group.partition(" ")
    rank = OPERATIONS.index(operation) if operation in OPERATIONS else len(OPERATIONS)
    numbers = [int(v) for v in re.findall(r"=(\d+)", params)]
    return (rank, operation, [-v for v in numbers], params)


def human(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.1f} ns"


def main():
    target = Path(
        sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CARGO_TARGET_DIR", "target")
    )
    criterion_dir = target / "criterion"
    groups = load_medians(criterion_dir)
    if not groups:
        sys.exit(f"no criterion results under {criterion_dir}")

    print(f"| benchmark | {OURS} median | other crate | other median | ratio ({OURS} / other) |")
    print("|---|---:|---|---:|---:|")
    for group in sorted(groups, key=group_order):
        functions = groups[group]
        ours = functions.get(OURS)
        others = sorted(f for f in functions if f != OURS) or [None]
        for other in others:
            theirs = functions.get(other) if other else None
            ratio = f"{ours / theirs:.2f}" if ours and theirs else "-"
            print(
                f"| {group} | {human(ours) if ours else '-'} | {other or '-'} "
                f"| {human(theirs) if theirs else '-'} | {ratio} |"
            )


if __name__ == "__main__":
    main()
