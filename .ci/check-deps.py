#!/usr/bin/env python3
"""Checks the workspace's dependency graph (from `cargo metadata`):

- no cycle among workspace crates, counting normal, build and dev edges
  (a crate's tests that need a crate built on it belong to that crate);
- no test-only crate in what ships: the normal (and build) dependencies of
  the crates that build binaries or libraries for a sled (`tq`, `tq-std`,
  `tq-driver`) reach neither `tq-test-fixtures` nor `vsss-rs`, except
  `vsss-rs` through `tq-rack-setup` (the demo's LRTQ rack set up as LRTQ
  did it).

Exits 1 with the offending paths if either fails.
"""

import json
import subprocess
import sys

SHIPPED = ["tq", "tq-std", "tq-driver"]
TEST_ONLY = {"tq-test-fixtures"}
# Only these may bring vsss-rs into what ships.
VSSS_VIA = {"tq-rack-setup"}


def main():
    meta = json.loads(
        subprocess.check_output(
            ["cargo", "metadata", "--format-version", "1", "--locked"]
        )
    )
    packages = {p["id"]: p for p in meta["packages"]}
    name = {pid: packages[pid]["name"] for pid in packages}
    members = set(meta["workspace_members"])
    # id -> [(dep id, kinds)]; resolve has every target's edges.
    edges = {}
    for node in meta["resolve"]["nodes"]:
        edges[node["id"]] = [
            (dep["pkg"], {k["kind"] or "normal" for k in dep["dep_kinds"]})
            for dep in node["deps"]
        ]
    failures = []

    # Cycles among workspace members, any kind of edge.
    graph = {
        m: sorted({d for d, _ in edges.get(m, []) if d in members}) for m in members
    }
    state = {}
    stack = []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in graph[m]:
            if state.get(d) == "open":
                cycle = stack[stack.index(d):] + [d]
                failures.append(
                    "cycle: " + " -> ".join(name[c] for c in cycle)
                )
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(members, key=lambda m: name[m]):
        if m not in state:
            visit(m)

    # What ships: normal and build edges only.
    for root in SHIPPED:
        start = next(m for m in members if name[m] == root)
        seen = {start: [root]}
        todo = [start]
        while todo:
            cur = todo.pop()
            for dep, kinds in edges.get(cur, []):
                if not kinds & {"normal", "build"} or dep in seen:
                    continue
                path = seen[cur] + [name[dep]]
                seen[dep] = path
                if name[dep] in TEST_ONLY:
                    failures.append(f"{root} ships a test crate: " + " -> ".join(path))
                elif name[dep] == "vsss-rs" and name[cur] not in VSSS_VIA:
                    failures.append(f"{root} ships vsss-rs: " + " -> ".join(path))
                todo.append(dep)

    for failure in failures:
        print(failure, file=sys.stderr)
    if failures:
        sys.exit(1)
    print(f"dependency graph: {len(members)} crates, no cycle; what ships has no test crate")


if __name__ == "__main__":
    main()
