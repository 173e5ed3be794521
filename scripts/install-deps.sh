#!/usr/bin/env bash
# Installs the system libraries DWCP builds against (Debian), only when something is missing.
set -euo pipefail
need=()
pkg-config --version >/dev/null 2>&1 || need+=(pkg-config)
pkg-config --exists lmdb 2>/dev/null || need+=(liblmdb-dev)
pkg-config --exists sqlite3 2>/dev/null || need+=(libsqlite3-dev)
pkg-config --exists libzstd 2>/dev/null || need+=(libzstd-dev)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# Certificates for mutual TLS between members (scripts/peer-certs.sh; the demo and the tests).
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -f /usr/include/linux/kvm.h ] || need+=(linux-libc-dev)
# `install-deps.sh --qemu`: also QEMU, the anchor of bench/vm-start.
if [ "${1:-}" = "--qemu" ]; then command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86); fi
# `install-deps.sh --etcd`: also etcd, the anchor of bench/region.
if [ "${1:-}" = "--etcd" ]; then command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ] || need+=(etcd-server); fi
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
echo "installing: ${need[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}" >/dev/null
