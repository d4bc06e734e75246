#!/usr/bin/env python3
"""What the browser downloads for each page of the dashboard built with `cargo leptos build
--release --split`: the main module, its JavaScript and the stylesheet for every page, plus the
WebAssembly chunks the page's lazy route needs (from `__wasm_split_manifest.json`). Sizes raw
and gzip -9, each file compressed on its own, as a server would send it.

    bench/wasm-pages.py target/site/pkg
"""
import gzip
import json
import pathlib
import sys

pkg = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/site/pkg")


def sizes(path):
    data = path.read_bytes()
    return len(data), len(gzip.compress(data, 9))


shared = [pkg / "billing.wasm", pkg / "billing.js", pkg / "billing.css"]
shared += sorted(pkg.glob("__wasm_split.*.js"))
for path in shared:
    raw, packed = sizes(path)
    print(f"{path.name:44} {raw:10,} bytes raw {packed:10,} bytes gzip -9")
base_raw = sum(sizes(p)[0] for p in shared)
base_gz = sum(sizes(p)[1] for p in shared)
chunks = {p.stem: sizes(p) for p in pkg.glob("*.wasm") if p.name != "billing.wasm"}
manifest_path = pkg / "__wasm_split_manifest.json"
manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
print(f"{'every page: the files above':44} {base_raw:10,} bytes raw {base_gz:10,} bytes gzip -9")
if not manifest:
    print("no split manifest: the whole app is the files above")
    sys.exit(0)
print(f"{'all chunks (' + str(len(chunks)) + ' files)':44} {sum(r for r, _ in chunks.values()):10,} bytes raw "
      f"{sum(g for _, g in chunks.values()):10,} bytes gzip -9")
print(f"{'the whole app':44} {base_raw + sum(r for r, _ in chunks.values()):10,} bytes raw "
      f"{base_gz + sum(g for _, g in chunks.values()):10,} bytes gzip -9")
print("a page's download: the files above and its route's chunks")
largest = 0
for key, needed in sorted(manifest.items()):
    route = key.strip("_").split("_route_view")[0]
    raw = base_raw + sum(chunks[c][0] for c in needed)
    packed = base_gz + sum(chunks[c][1] for c in needed)
    largest = max(largest, packed)
    print(f"  {route:20} {len(needed):4} chunks {raw:10,} bytes raw {packed:10,} bytes gzip -9")
print(f"{'largest page':44} {largest:10,} bytes gzip -9")
