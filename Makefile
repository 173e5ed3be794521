# DWCP — the two commands of the README, and a few more.
.PHONY: deps build demo test check-release bench-store bench-placement bench-vm-start bench-region format clean

# Release builds link the Swift runtime and Foundation into each binary: a `dwcp serve` that does
# not load them starts about 10 ms sooner, which a restarted member's recovery feels (BENCHMARKS.md,
# "A static binary"). Every release build uses the same flags, so switching products reuses them.
RELEASE_BUILD := swift build -c release --static-swift-stdlib

deps:
	@scripts/install-deps.sh

build: deps
	swift build

## A real end-to-end tour: an embedded single node, then a three-node region on loopback.
demo: build
	scripts/demo.sh

## Every test (the command CI runs).
test: build
	swift build --build-tests
	@# The builds leave about a gigabyte of dirty pages: written back first, so that the tests'
	@# fsyncs (the log's, SQLite's) do not queue behind them. (The 10-30 s stalls two CI runs
	@# met were mostly the cooperative pool's queue at the start of the run: docs/architecture.md.)
	sync
	swift test

## What only the release build shows (CI runs it after the tests): tasks on NIO's event loops.
check-release: deps
	$(RELEASE_BUILD) --product dwcp
	scripts/check-release.sh .build/release/dwcp

## bench/store: the log and views against raw LMDB, in one run (release build).
bench-store: deps
	$(RELEASE_BUILD) --product dwcp-bench-store
	$(RELEASE_BUILD) --product dwcp
	.build/release/dwcp-bench-store

## bench/placement: scheduler quality against an exact solver, and placements/s (release build).
bench-placement:
	$(RELEASE_BUILD) --product dwcp-bench-placement
	.build/release/dwcp-bench-placement

## bench/vm-start: VM starts (cold, pool, snapshot restore) against QEMU microvm, in one run (release build).
bench-vm-start:
	@scripts/install-deps.sh --qemu
	$(RELEASE_BUILD) --product dwcp-bench-vm-start
	.build/release/dwcp-bench-vm-start

## bench/region: small writes to a three-node region against a three-node etcd, in one run (release build).
bench-region:
	@scripts/install-deps.sh --etcd
	$(RELEASE_BUILD) --product dwcp
	$(RELEASE_BUILD) --product dwcp-bench-region
	.build/release/dwcp-bench-region

format:
	swift format --in-place --recursive Package.swift Plugins Sources Tests bench

clean:
	rm -rf .build
