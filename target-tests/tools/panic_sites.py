#!/usr/bin/env python3
"""Lists the panic paths left in a Thumb-2 ELF, by source location.

Finds every call to a core panic entry point (`panic_fmt`,
`panic_bounds_check`, `unwrap_failed`, ...) in `llvm-objdump -d` output,
then asks `llvm-addr2line -i` for the chain of inlined frames at each call,
and prints, per panic site, the innermost source location and the
outermost function it was inlined into. Run it on the node binary built
*without* the `no-panic` feature to see why the `no-panic` build does not
link.

    tools/panic_sites.py ELF [--objdump llvm-objdump] [--addr2line llvm-addr2line]
"""
import argparse
import collections
import re
import subprocess

PANIC_ENTRY = re.compile(
    r"core::panicking::|core::slice::index::slice_\w*fail|core::option::expect_failed"
    r"|core::result::unwrap_failed|panic_on_ord_violation|len_mismatch_fail"
    r"|core::str::slice_error_fail|core::cell::panic_already"
)
HEADER = re.compile(r"^([0-9a-f]+) <(.*)>:$")
CALL = re.compile(r"^\s*([0-9a-f]+):\s+b(?:l|\.w)?\s+0x[0-9a-f]+ <(.*)>")


def disassemble(objdump, elf):
    """Panic call sites (address, entry point, function) and the callers of
    every function."""
    out = subprocess.run(
        [objdump, "-d", "--no-show-raw-insn", "-C", elf],
        check=True, capture_output=True, text=True,
    ).stdout
    current, sites, callers = None, [], collections.defaultdict(set)
    for line in out.splitlines():
        if m := HEADER.match(line.strip()):
            current = m.group(2)
            continue
        m = CALL.match(line)
        if not m or not current:
            continue
        callers[m.group(2)].add(current)
        if PANIC_ENTRY.search(m.group(2)) and not PANIC_ENTRY.search(current):
            sites.append((int(m.group(1), 16), m.group(2), current))
    return sites, callers


def is_core(function):
    return re.match(r"(_\$LT\$)?core[.:]|OUTLINED_FUNCTION|compiler_builtins", function) is not None


def first_callers_outside_core(function, callers, limit=4):
    """Climbs the call graph from a core function to the first callers
    that are not core."""
    seen, frontier, found = {function}, [function], []
    while frontier and len(found) < limit:
        nxt = []
        for f in frontier:
            for caller in sorted(callers.get(f, ())):
                if caller in seen:
                    continue
                seen.add(caller)
                (nxt if is_core(caller) else found).append(caller)
        frontier = nxt
    return found[:limit]


def inline_chain(addr2line, elf, addresses):
    out = subprocess.run(
        [addr2line, "-e", elf, "-i", "-f", "-C", "-a"] + [hex(a) for a in addresses],
        check=True, capture_output=True, text=True,
    ).stdout
    chains, current = {}, None
    lines = out.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("0x"):
            current = int(lines[i], 16)
            chains[current] = []
            i += 1
            continue
        chains[current].append((lines[i], lines[i + 1] if i + 1 < len(lines) else "?"))
        i += 2
    return chains


def short(location):
    location = re.sub(r"^.*/registry/src/[^/]+/", "", location)
    location = re.sub(r"^(/rustc/[0-9a-f]+|.*/rustlib/src/rust)/library/", "std:", location)
    location = re.sub(r"^/work/[^/]+/", "", location)
    return location


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("elf")
    parser.add_argument("--objdump", default="llvm-objdump")
    parser.add_argument("--addr2line", default="llvm-addr2line")
    args = parser.parse_args()
    sites, callers = disassemble(args.objdump, args.elf)
    chains = inline_chain(args.addr2line, args.elf, [a for a, _, _ in sites])
    by_origin = collections.defaultdict(list)
    for address, target, function in sites:
        chain = chains.get(address, [])
        # Innermost frame outside core: where the panic comes from. When
        # every inlined frame is in core, name the function that holds it.
        outside = [(fn, short(loc)) for fn, loc in chain if not short(loc).startswith("std:")]
        if outside:
            fn, origin = outside[0]
        else:
            via = first_callers_outside_core(function, callers)
            fn = function + " <- " + " | ".join(v[:70] for v in via)
            origin = "(inside core)"
        kind = target.split("::")[-1].split("<")[0]
        by_origin[(origin, fn[:400])].append(kind)
    print(f"{len(sites)} calls to panic entry points from {len(by_origin)} places")
    for (origin, fn) in sorted(by_origin):
        kinds = ", ".join(sorted(set(by_origin[(origin, fn)])))
        print(f"  {origin}  in {fn}  [{kinds}]")

if __name__ == "__main__":
    main()
