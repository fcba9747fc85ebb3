#!/usr/bin/env python3
"""Checks the service processor's run of the wire vectors against the file.

The `vectors` binary prints `vector LINE DECODER OUTCOME` for each vector of
core/tests/vectors/wire.txt it ran (and exits non-zero itself on a wrong
outcome); the host test (tq-core's `wire::vector_tests`) checks the same
file. This compares the decoded log with the file: the same vectors, in the
same order, with the file's outcomes, so a run that stopped early or
skipped lines fails too. Prints the count; exits 1 on any difference.

    tools/vectors.py VECTORS_FILE DECODED_LOG
"""
import re
import sys


def expected(path):
    """(line, decoder, outcome) of every vector in the file."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            fields = line.split("#", 1)[0].split()
            if fields:
                rows.append((number, fields[0], fields[1]))
    return rows


def ran(path):
    """(line, decoder, outcome) of every vector the target printed."""
    pattern = re.compile(r"^vector (\d+) (\S+) (\S+)$")
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if m := pattern.match(line.strip()):
                rows.append((int(m.group(1)), m.group(2), m.group(3)))
    return rows


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    want, got = expected(sys.argv[1]), ran(sys.argv[2])
    differences = [(w, g) for w, g in zip(want, got) if w != g]
    for w, g in differences:
        print(f"line {w[0]}: {w[1]} expected {w[2]}; target ran line {g[0]}: {g[1]} {g[2]}")
    if len(want) != len(got):
        print(f"the file has {len(want)} vectors, the target ran {len(got)}")
    if differences or len(want) != len(got):
        sys.exit("wire vectors: the target's outcomes differ from the file's")
    print(f"wire vectors: the target gave the file's outcome for all {len(got)} (as the host test does)")


if __name__ == "__main__":
    main()
