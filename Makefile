# DWCP — the two commands of the README, and a few more.
.PHONY: deps build demo test bench-store bench-placement bench-vm-start bench-region format clean

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
	swift test

## bench/store: the log and views against raw LMDB, in one run (release build).
bench-store: deps
	swift build -c release --product dwcp-bench-store
	swift build -c release --product dwcp
	.build/release/dwcp-bench-store

## bench/placement: scheduler quality against an exact solver, and placements/s (release build).
bench-placement:
	swift build -c release --product dwcp-bench-placement
	.build/release/dwcp-bench-placement

## bench/vm-start: VM starts (cold, pool, snapshot restore) against QEMU microvm, in one run (release build).
bench-vm-start:
	@scripts/install-deps.sh --qemu
	swift build -c release --product dwcp-bench-vm-start
	.build/release/dwcp-bench-vm-start

## bench/region: small writes to a three-node region against a three-node etcd, in one run (release build).
bench-region:
	@scripts/install-deps.sh --etcd
	swift build -c release --product dwcp
	swift build -c release --product dwcp-bench-region
	.build/release/dwcp-bench-region

format:
	swift format --in-place --recursive Package.swift Plugins Sources Tests bench

clean:
	rm -rf .build
