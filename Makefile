# The two commands of the README:
#   make demo   build in release and serve the dashboard on the embedded SQLite database
#   make test   every check CI runs: format, lints, Rust tests on SQLite and PostgreSQL, browser suite
# Both install what is missing first (see `make tools`). Versions are pinned in ../shared/toolchain.md
# terms: cargo-leptos 0.3.10, wasm-bindgen-cli equal to Cargo.lock's wasm-bindgen, binaryen 132 from npm.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO_HOME ?= $(HOME)/.cargo
export PATH := $(CURDIR)/.tools/node_modules/.bin:$(CARGO_HOME)/bin:$(PATH)

CARGO_LEPTOS_VERSION := 0.3.10
LOCALSTRIPE_VERSION := 1.15.10
WASM_BINDGEN_VERSION := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/version = "\(.*\)"/\1/p;}' Cargo.lock)
BINARYEN_VERSION := 132.0.0
BINARYEN_MAJOR := 132
ADDR ?= 127.0.0.1:3000

.PHONY: help demo test tools test-tools build-release build-debug lint rust-tests browser-tests

help:
	@echo "make demo   build in release and serve the dashboard at http://$(ADDR) (SQLite under ./data/)"
	@echo "make test   format check, clippy, Rust tests on SQLite and PostgreSQL, browser suite"

## Run the product on the embedded default.
demo: tools build-release
	mkdir -p data
	./target/release/billing migrate
	./target/release/billing staff demo
	./target/release/billing demo-data --passengers 200 --drivers 20 --weeks 4
	@echo "Open http://$(ADDR) in a browser and sign in with an account above (Ctrl-C stops the server)."
	PSP_URL=sim PSP_PROVISION=test LEPTOS_SITE_ROOT=target/site ./target/release/billing serve --addr $(ADDR)

## Run every test.
test: tools test-tools lint build-debug browser-tests rust-tests

build-release:
	cargo leptos build --release
	node scripts/publish-assets.mjs target/site/pkg

build-debug:
	cargo leptos build
	node scripts/publish-assets.mjs target/site/pkg

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings

rust-tests:
	tests/with-postgres.sh cargo test --workspace

browser-tests:
	cd tests/browser && BILLING_BIN=$(CURDIR)/target/debug/billing LEPTOS_SITE_ROOT=$(CURDIR)/target/site npm test

## Installs the build tools when missing (idempotent, offline-safe once installed).
tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@command -v cargo-leptos >/dev/null && cargo leptos --version | grep -q " $(CARGO_LEPTOS_VERSION)" \
	  || cargo install cargo-leptos@$(CARGO_LEPTOS_VERSION) --locked
	@command -v wasm-bindgen >/dev/null && wasm-bindgen --version | grep -q " $(WASM_BINDGEN_VERSION)" \
	  || cargo install wasm-bindgen-cli@$(WASM_BINDGEN_VERSION)
	@[ -x .tools/node_modules/.bin/wasm-opt ] && .tools/node_modules/.bin/wasm-opt --version | grep -q "version $(BINARYEN_MAJOR) " \
	  || npm install --prefix .tools --no-save --no-audit --no-fund binaryen@$(BINARYEN_VERSION)
	@echo "tools: wasm32 target, cargo-leptos $(CARGO_LEPTOS_VERSION), wasm-bindgen $(WASM_BINDGEN_VERSION), wasm-opt (binaryen $(BINARYEN_VERSION))"

## What the tests need beyond the build tools: Chromium, Playwright, PostgreSQL server binaries.
test-tools:
	@[ -x /usr/bin/chromium ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }
	@[ -d tests/browser/node_modules/playwright-core ] && [ -d tests/browser/node_modules/axe-core ] || (cd tests/browser && npm ci --no-audit --no-fund)
	@# localstripe (PyPI), the third-party Stripe emulator the Stripe client is checked against,
	@# in a virtual environment inside the build directory.
	@[ -x target/localstripe/bin/localstripe ] || { python3 -m venv target/localstripe \
	  && target/localstripe/bin/pip install -q --disable-pip-version-check localstripe==$(LOCALSTRIPE_VERSION); }
