#!/bin/sh
# Creates a private CA, a server certificate for the broker and a client certificate for the
# kernel, in the directory given (default ./certs). For production, use your organisation's CA
# or an ACME certificate instead of this CA; the file names stay the same.
#
#   ./make-certs.sh certs broker.example.org    # names the broker is reached by (SAN)
set -eu

out=${1:-certs}
shift || true
names=${*:-localhost}
days=${CERT_DAYS:-825}
mkdir -p "$out"
cd "$out"

san="IP:127.0.0.1"
for name in $names; do san="$san,DNS:$name"; done

openssl req -x509 -newkey rsa:3072 -nodes -days "$days" -keyout ca.key -out ca.crt \
    -subj "/CN=TaylorDash broker CA" -addext "basicConstraints=critical,CA:true" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

openssl req -newkey rsa:3072 -nodes -keyout server.key -out server.csr -subj "/CN=${names%% *}" 2>/dev/null
printf "subjectAltName=%s\nextendedKeyUsage=serverAuth\n" "$san" > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
    -extfile server.ext -out server.crt 2>/dev/null

openssl req -newkey rsa:3072 -nodes -keyout client.key -out client.csr -subj "/CN=taylordash" 2>/dev/null
printf "extendedKeyUsage=clientAuth\n" > client.ext
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
    -extfile client.ext -out client.crt 2>/dev/null

rm -f server.csr client.csr server.ext client.ext ca.srl
chmod 600 ca.key server.key client.key
chmod 644 ca.crt server.crt client.crt
echo "created in $(pwd): ca.crt ca.key server.crt server.key client.crt client.key"
