#!/usr/bin/env bash
# The release WebAssembly bundle: raw and gzip -9 sizes of what a browser downloads, and the time
# to interactive of the overview page in headless Chromium (from navigation to the moment the
# WebAssembly has hydrated the page), five cold loads on a fresh SQLite database.
#
#   bench/wasm.sh            (builds with `cargo leptos build --release` if the bundle is missing)
# Needs what `make test-tools` installs: Chromium and tests/browser/node_modules.
source "$(dirname "$0")/lib.sh"
[ -f target/site/pkg/billing.wasm ] || cargo leptos build --release
machine
for file in target/site/pkg/billing.wasm target/site/pkg/billing.js target/site/pkg/billing.css; do
  printf "%-36s %10d bytes raw %10d bytes gzip -9\n" "$file" "$(wc -c < "$file")" "$(gzip -9 -c "$file" | wc -c)"
done
BILLING_BIN=$BIN LEPTOS_SITE_ROOT=$PWD/target/site node bench/tti.mjs
