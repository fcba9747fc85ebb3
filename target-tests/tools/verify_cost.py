#!/usr/bin/env python3
"""Prints what checking one Nexus request costs on the Cortex-M7, for each
candidate authenticator: the flash its verifier adds (text + rodata + data
of its `verify_*` binary less `verify_baseline`'s, read as budgets.py reads
the node binary) and the instructions of one verification (from the
binary's decoded defmt log). Exits 1 if a log lacks its count (a
verification that failed exits the binary non-zero before printing it).

    tools/verify_cost.py --dir TARGET_RELEASE_DIR --logs LOG_DIR
"""
import argparse
import pathlib
import re
import sys

from budgets import section_sizes

CANDIDATES = ("verify_mac", "verify_ed25519")


def flash(path):
    sizes = section_sizes(path)
    return sizes["text"] + sizes["rodata"] + sizes["data"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=pathlib.Path)
    parser.add_argument("--logs", required=True, type=pathlib.Path)
    args = parser.parse_args()
    baseline = flash(args.dir / "verify_baseline")
    print(f"{'verifier':<16} {'flash added (B)':>16} {'instructions':>14}  call")
    for name in CANDIDATES:
        log = (args.logs / f"{name}.log").read_text()
        found = re.search(r"icount: (.+): (\d+) instructions", log)
        if found is None:
            sys.exit(f"{name}: no instruction count in its log")
        added = flash(args.dir / name) - baseline
        print(f"{name:<16} {added:>16,} {int(found[2]):>14,}  {found[1]}")


if __name__ == "__main__":
    main()
