#!/usr/bin/env bash
# Makes what mutual TLS needs: a certificate authority and, for each name, a certificate it
# signed and its key, for both server and client use. For the replication port: the members
# (--peer-cert-file ...); for the API, with an authority of its own in another DIR: the members'
# API certificates (--api-cert-file ...) and the clients' (the CLI's --cert-file ...).
#
#   scripts/peer-certs.sh DIR ID=HOST [ID=HOST ...]
#
# HOST is what the other members dial (the HOST of that member's --peer ID@HOST:PORT): an IP
# address or a DNS name, which the certificate names so peers can check it. Writes DIR/ca.pem (give it
# to every member as --peer-trusted-ca-file), DIR/ID.pem and DIR/ID.key (that member's
# --peer-cert-file and --peer-key-file). An existing DIR/ca.pem and DIR/ca.key are reused, so a
# member added later gets a certificate from the same authority. Keys are ECDSA P-256; the
# certificates last 825 days. Needs openssl.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 DIR ID=HOST [ID=HOST ...]" >&2
    exit 2
fi
dir=$1
shift
command -v openssl >/dev/null || { echo "peer-certs.sh: openssl is not installed (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$dir"
umask 077
if [ ! -f "$dir/ca.pem" ] || [ ! -f "$dir/ca.key" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=dwcp region CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
fi
for member in "$@"; do
    id=${member%%=*}
    host=${member#*=}
    if [ -z "$id" ] || [ -z "$host" ] || [ "$id" = "$member" ]; then
        echo "peer-certs.sh: '$member' is not ID=HOST" >&2
        exit 2
    fi
    if [[ $host =~ ^[0-9.]+$ || $host == *:* ]]; then san="IP:$host"; else san="DNS:$host"; fi
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$id" \
        -keyout "$dir/$id.key" -out "$dir/$id.csr" 2>/dev/null
    openssl x509 -req -in "$dir/$id.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 825 -out "$dir/$id.pem" \
        -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san") 2>/dev/null
    rm -f "$dir/$id.csr"
done
chmod 644 "$dir"/*.pem
