#!/usr/bin/env python3
"""What weighs in the WebAssembly bundle: `twiggy top` of the module cargo builds (before
wasm-bindgen, with its function names), grouped into the framework's parts and the crates.

    twiggy top -n 1000000 --format csv target/front/wasm32-unknown-unknown/wasm-release/app.wasm \
      | bench/wasm-weights.py
"""
import collections
import csv
import re
import sys

GROUPS = [
    ("Leptos views: hydrate (tachys)", lambda n: "hydrate" in n),
    ("serde (de)serializers", lambda n: any(s in n for s in ("serde_json", "serde::", "serde_core", "eserialize"))),
    ("Leptos views: build, rebuild (tachys)", lambda n: "tachys" in n and ("build" in n)),
    ("reactive_graph (signals, effects)", lambda n: "reactive_graph" in n),
    ("wasm-bindgen descriptors (removed by wasm-bindgen)", lambda n: "__wbindgen_describe" in n),
    ("tachys, other", lambda n: "tachys" in n),
    ("core, alloc, std", lambda n: re.match(r"[<&\s*]*(core|alloc|std)(\[[0-9a-f]+\])?::", n) is not None),
    ("static data (.rodata)", lambda n: n.startswith('data segment ".rodata"')),
    ("the app's own code (app::)", lambda n: "app::" in n),
]

sizes = collections.Counter()
total = 0
for row in csv.DictReader(sys.stdin):
    name, size = row["Name"], int(row["ShallowSize"])
    if name.startswith('"function names"') or name.startswith("custom section"):
        continue  # names and wasm-bindgen's own section: not in the file a browser downloads
    total += size
    group = next((g for g, test in GROUPS if test(name)), None)
    if group is None:
        crate = re.match(r"[<&\s*]*(?:mut |const |dyn )?([a-z_][a-z0-9_]*)", name)
        group = f"crate {crate.group(1)}" if crate else "other"
    sizes[group] += size

print(f"{'code and data before wasm-bindgen':<52} {total:>10,} bytes")
for group, size in sizes.most_common(14):
    print(f"  {group:<50} {size:>10,} {100 * size / total:5.1f} %")
