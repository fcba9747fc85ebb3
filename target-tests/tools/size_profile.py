#!/usr/bin/env python3
"""Where the flash of a Thumb-2 ELF goes: per source crate, per core module,
per function.

- per source crate (and, for tq-core, per source file): every byte of
  `.text` attributed, through the DWARF line table, to the source file of
  the innermost (inlined) frame that produced it; with fat LTO and
  inlining, a function's symbol says little about whose code it holds,
  the line table says whose source each instruction came from. Bytes
  the line table does not cover (padding, compiler-generated code) are
  listed as `(no line)`.
- per function: the largest symbols of `.text`, `.rodata` and `.data`, as
  `llvm-nm --size-sort` lists them.

Needs the ELF built with debug info (target-tests' release profile has
`debug = true`).

    tools/size_profile.py ELF [--nm llvm-nm] [--dwarfdump llvm-dwarfdump] [--top 40]
"""
import argparse
import collections
import re
import subprocess

REGISTRY = re.compile(r"/registry/src/[^/]+/([A-Za-z0-9_-]+?)-\d+\.\d+\.\d+[^/]*")
# The standard library's own objects name their sources relative to the
# toolchain's checkout (`library/core/src/...`).
TOOLCHAIN = re.compile(r"^/rustc/[0-9a-f]+|/rustlib/src/rust|^library/")
ROW = re.compile(r"^0x([0-9a-f]+)\s+(\d+)\s+\d+\s+(\d+)\s.*?(end_sequence)?$")


def source_owner(path):
    """The crate a source path belongs to; for tq-core, `tq-core/<file>`."""
    if m := REGISTRY.search(path):
        return m.group(1)
    if TOOLCHAIN.search(path):
        lib = re.search(r"library/([a-z_-]+)/", path)
        return "std:" + (lib.group(1) if lib else "?")
    if m := re.search(r"/core/src/(.+)$", path):
        return "tq-core/" + m.group(1)
    if "/harness/" in path:
        return "tq-harness"
    if path.startswith("src/") or "/target-tests/" in path:
        return "tq-target-tests"
    return path


def compile_dirs(dwarfdump, elf):
    """Each line table's directory 0: its compile unit's `DW_AT_comp_dir`
    (the unit's crate), by the table's offset."""
    out = subprocess.run([dwarfdump, "--debug-info", "-r", "0", elf],
                         check=True, capture_output=True, text=True).stdout
    dirs, offset = {}, None
    for line in out.splitlines():
        if m := re.search(r"DW_AT_stmt_list\s+\(0x([0-9a-f]+)\)", line):
            offset = int(m.group(1), 16)
        elif (m := re.search(r'DW_AT_comp_dir\s+\("(.*)"\)', line)) and offset is not None:
            dirs[offset] = m.group(1)
            offset = None
    return dirs


def line_table_bytes(dwarfdump, elf):
    """Bytes per source owner, from each line-table row to the next."""
    comp_dirs = compile_dirs(dwarfdump, elf)
    out = subprocess.run([dwarfdump, "--debug-line", elf],
                         check=True, capture_output=True, text=True).stdout
    owners = collections.Counter()
    dirs, files, prev = {}, {}, None
    pending_file = None
    for line in out.splitlines():
        if m := re.match(r"debug_line\[0x([0-9a-f]+)\]", line):
            dirs, files, prev = {0: comp_dirs.get(int(m.group(1), 16), "")}, {}, None
            continue
        if m := re.match(r'include_directories\[\s*(\d+)\] = "(.*)"', line):
            dirs[int(m.group(1))] = m.group(2)
            continue
        if m := re.match(r"file_names\[\s*(\d+)\]:", line):
            pending_file = int(m.group(1))
            continue
        if m := re.match(r'\s+name: "(.*)"', line):
            name = m.group(1)
            continue
        if (m := re.match(r"\s+dir_index: (\d+)", line)) and pending_file is not None:
            d = dirs.get(int(m.group(1)), "")
            # Relative directories are relative to the unit's own crate.
            if not d.startswith("/") and not d.startswith("library/"):
                d = f"{dirs[0]}/{d}" if d else dirs[0]
            files[pending_file] = name if name.startswith("/") else f"{d}/{name}"
            pending_file = None
            continue
        if m := ROW.match(line):
            address, line_no, end = int(m.group(1), 16), int(m.group(2)), m.group(4)
            if prev is not None and address > prev[0]:
                owners[prev[1]] += address - prev[0]
            # Line 0: code the compiler made up (spills, merged tails), of no
            # source line.
            owner = source_owner(files.get(int(m.group(3)), "?")) if line_no else "(line 0)"
            prev = None if end else (address, owner)
    return owners


def symbols(nm, elf):
    out = subprocess.run([nm, "-S", "--size-sort", "-C", elf],
                         check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4:
            rows.append((int(parts[1], 16), parts[2], re.sub(r"::h[0-9a-f]{16}$", "", parts[3])))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("elf")
    parser.add_argument("--nm", default="llvm-nm")
    parser.add_argument("--dwarfdump", default="llvm-dwarfdump")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()

    owners = line_table_bytes(args.dwarfdump, args.elf)
    crates = collections.Counter()
    for owner, size in owners.items():
        crates["tq-core" if owner.startswith("tq-core/") else owner] += size
    print(f".text by source crate (line table; {sum(owners.values())} bytes):")
    for crate, size in crates.most_common():
        print(f"  {size:>7}  {crate}")
    print("tq-core by source file:")
    for owner, size in owners.most_common():
        if owner.startswith("tq-core/"):
            print(f"  {size:>7}  {owner[len('tq-core/'):]}")

    rows = symbols(args.nm, args.elf)
    for title, kinds in (("text", "tT"), ("rodata and data", "rRdD")):
        picked = [r for r in rows if r[1] in kinds]
        print(f"largest {title} symbols ({sum(r[0] for r in picked)} bytes in symbols):")
        for size, _, name in sorted(picked, reverse=True)[: args.top]:
            print(f"  {size:>7}  {name[:150]}")


if __name__ == "__main__":
    main()
