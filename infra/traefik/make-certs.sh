#!/bin/sh
# Creates a self-signed certificate for a first start, in infra/traefik/certs (tls.crt, tls.key).
# Browsers warn about it: replace both files with your domain's certificate for real use.
#
#   ./infra/traefik/make-certs.sh taylordash.example.org
set -eu
name=${1:-localhost}
out=$(dirname "$0")/certs
mkdir -p "$out"
openssl req -x509 -newkey rsa:3072 -nodes -days "${CERT_DAYS:-365}" \
    -keyout "$out/tls.key" -out "$out/tls.crt" -subj "/CN=$name" \
    -addext "subjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1" 2>/dev/null
chmod 600 "$out/tls.key"
chmod 644 "$out/tls.crt"
echo "created $out/tls.crt and $out/tls.key for $name"
