#!/usr/bin/env bash
# The release WebAssembly bundle: raw, gzip -9 and brotli (as sent) sizes of what a browser downloads, and the time
# to interactive of the overview page in headless Chromium (from navigation to the moment the
# WebAssembly has hydrated the page), five cold loads on a fresh SQLite database, served by the
# release `billing`.
#
#   bench/wasm.sh                  (builds the release front end first:
#                                   cargo leptos build --release --frontend-only)
#   BENCH_SITE=DIR bench/wasm.sh   (measures a release site built before, in DIR)
# With twiggy installed (cargo install twiggy), it also prints what weighs in the module
# (bench/wasm-weights.py).
# Needs what `make test-tools` installs: Chromium and tests/browser/node_modules.
source "$(dirname "$0")/lib.sh"
SITE=${BENCH_SITE:-}
if [ -z "$SITE" ]; then
  PATH=$PWD/.tools/node_modules/.bin:$PATH cargo leptos build --release --frontend-only > /dev/null
  SITE=target/site
fi
machine
# What the server sends: the content-named files and their brotli copies made at build time
# (scripts/publish-assets.mjs).
node scripts/publish-assets.mjs "$SITE/pkg" > /dev/null
BUNDLE=$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1])).bundle)' "$SITE/pkg/assets.json")
for file in "$SITE/pkg/$BUNDLE.wasm" "$SITE/pkg/$BUNDLE.js" "$SITE/pkg/$BUNDLE.css"; do
  printf "%-36s %10d bytes raw %10d bytes gzip -9 %10d bytes brotli (as sent)\n" "${file##*/}" "$(wc -c < "$file")" \
    "$(gzip -9 -c "$file" | wc -c)" "$(wc -c < "$file.br")"
done
MODULE=target/front/wasm32-unknown-unknown/wasm-release/app.wasm
if command -v twiggy > /dev/null && [ -f "$MODULE" ]; then
  twiggy top -n 1000000 --format csv "$MODULE" 2> /dev/null | python3 "$(dirname "$0")/wasm-weights.py"
fi
BILLING_BIN=$BIN LEPTOS_SITE_ROOT=$(cd "$SITE" && pwd) node bench/tti.mjs
