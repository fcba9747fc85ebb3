#!/usr/bin/env python3
"""Stack frame size of every function in a Thumb-2 ELF, largest first.

Reads `llvm-objdump -d` output and adds up what each function's prologue
reserves: registers pushed (`push`, `vpush`, `stmdb sp!`) and `sub sp`
immediates. A diagnostic for finding which functions make a call deep;
the stack figures the budget checks come from painting, not from this.

    llvm-objdump -d --no-show-raw-insn -C ELF | tools/frames.py [--top N] [--grep WORD]
"""
import argparse
import re
import sys

HEADER = re.compile(r"^[0-9a-f]+ <(.*)>:$")
PUSH = re.compile(r"\b(push(?:\.w)?|stmdb(?:\.w)?\s+sp!,)\s*\{([^}]*)\}")
VPUSH = re.compile(r"\bvpush\s*\{([^}]*)\}")
SUB_SP = re.compile(r"\bsub(?:\.w|w)?\s+sp,\s*(?:sp,\s*)?#(\d+)")
PROLOGUE_LEN = 12


def register_count(regs):
    count = 0
    for part in regs.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-")
            count += int(hi.strip()[1:]) - int(lo.strip()[1:]) + 1
        elif part:
            count += 1
    return count


def frames(lines):
    name, seen, size = None, 0, 0
    for line in lines:
        header = HEADER.match(line.strip())
        if header:
            if name is not None:
                yield name, size
            name, seen, size = header.group(1), 0, 0
            continue
        if name is None or seen >= PROLOGUE_LEN or "\t" not in line:
            continue
        seen += 1
        if m := VPUSH.search(line):
            size += 8 * register_count(m.group(1))
        elif m := PUSH.search(line):
            size += 4 * register_count(m.group(2))
        elif m := SUB_SP.search(line):
            size += int(m.group(1))
    if name is not None:
        yield name, size


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--grep", default="")
    args = parser.parse_args()
    found = [(size, name) for name, size in frames(sys.stdin) if args.grep in name]
    for size, name in sorted(found, reverse=True)[: args.top]:
        print(f"{size:>9}  {name[:160]}")


if __name__ == "__main__":
    main()
