#!/usr/bin/env bash
# The release WebAssembly bundle, split by route: raw and gzip -9 sizes of what a browser
# downloads for every page and for each page's own route (bench/wasm-pages.py), and the time to
# interactive of the overview page in headless Chromium (from navigation to the moment the
# WebAssembly has hydrated the page), five cold loads on a fresh SQLite database, served by the
# release `billing`.
#
#   bench/wasm.sh                  (builds the release front end first:
#                                   cargo leptos build --release --frontend-only --split)
#   BENCH_SITE=DIR bench/wasm.sh   (measures a release site built before, in DIR)
# With twiggy installed (cargo install twiggy), it also prints what weighs in the module
# (bench/wasm-weights.py).
# Needs what `make test-tools` installs: Chromium and tests/browser/node_modules.
source "$(dirname "$0")/lib.sh"
SITE=${BENCH_SITE:-}
if [ -z "$SITE" ]; then
  PATH=$PWD/.tools/node_modules/.bin:$PATH cargo leptos build --release --frontend-only --split > /dev/null
  SITE=target/site
fi
machine
python3 "$(dirname "$0")/wasm-pages.py" "$SITE/pkg"
MODULE=target/front/wasm32-unknown-unknown/wasm-release/app.wasm
if command -v twiggy > /dev/null && [ -f "$MODULE" ]; then
  twiggy top -n 1000000 --format csv "$MODULE" 2> /dev/null | python3 "$(dirname "$0")/wasm-weights.py"
fi
BILLING_BIN=$BIN LEPTOS_SITE_ROOT=$(cd "$SITE" && pwd) node bench/tti.mjs
