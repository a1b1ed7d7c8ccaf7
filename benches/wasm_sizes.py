#!/usr/bin/env python3
"""What each part of a wasm module weighs: code bytes per crate (from the name section, so run
it on a build that keeps names, e.g. before wasm-opt strips them), and the data segments.

  benches/wasm_sizes.py FILE.wasm [--top 25]"""
import argparse, collections, re, sys


def leb(data, i):
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def sections(data):
    assert data[:4] == b"\0asm", "not a wasm module"
    i = 8
    while i < len(data):
        kind = data[i]
        size, i = leb(data, i + 1)
        yield kind, data[i:i + size]
        i += size


def crate_of(name):
    """`_ZN10burn_cubecl3ops…` or `<burn_cubecl::X as …>::f` or `cubecl_wgpu::…` → the crate."""
    match = re.match(r"_ZN(\d+)", name)
    if match:
        length = int(match.group(1))
        start = match.end()
        return name[start:start + length]
    match = re.search(r"([A-Za-z_][A-Za-z0-9_]*)::", name)
    return match.group(1) if match else "(other)"


p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("wasm")
p.add_argument("--top", type=int, default=25)
a = p.parse_args()
data = open(a.wasm, "rb").read()
imports, bodies, names, totals = 0, [], {}, collections.Counter()
for kind, body in sections(data):
    totals[{1: "types", 2: "imports", 3: "functions", 5: "memory", 6: "globals", 7: "exports", 10: "code", 11: "data", 0: "custom"}.get(kind, str(kind))] += len(body)
    if kind == 2:
        count, i = leb(body, 0)
        for _ in range(count):
            for _ in range(2):
                n, i = leb(body, i)
                i += n
            desc = body[i]
            i += 1
            if desc == 0:
                _, i = leb(body, i)
                imports += 1
            elif desc == 1:
                i += 1
                flags, i = leb(body, i)
                _, i = leb(body, i)
                if flags & 1:
                    _, i = leb(body, i)
            elif desc == 2:
                flags, i = leb(body, i)
                _, i = leb(body, i)
                if flags & 1:
                    _, i = leb(body, i)
            elif desc == 3:
                i += 2
    elif kind == 10:
        count, i = leb(body, 0)
        for _ in range(count):
            size, i = leb(body, i)
            bodies.append(size)
            i += size
    elif kind == 0:
        n, i = leb(body, 0)
        if body[i:i + n] == b"name":
            i += n
            while i < len(body):
                sub, i = body[i], i + 1
                size, i = leb(body, i)
                if sub == 1:
                    count, j = leb(body, i)
                    for _ in range(count):
                        index, j = leb(body, j)
                        length, j = leb(body, j)
                        names[index] = body[j:j + length].decode("utf-8", "replace")
                        j += length
                i += size

print(f"{a.wasm}: {len(data):,} bytes")
for section, size in totals.most_common():
    print(f"  {section:10} {size:>12,}")
if not names:
    sys.exit("no name section: sizes per crate need a build that keeps names")
crates = collections.Counter()
for offset, size in enumerate(bodies):
    crates[crate_of(names.get(imports + offset, "(unnamed)"))] += size
code = sum(bodies)
print(f"\ncode per crate (of {code:,} bytes):")
for crate, size in crates.most_common(a.top):
    print(f"  {crate:32} {size:>11,}  {100 * size / code:5.1f} %")
