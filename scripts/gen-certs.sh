#!/usr/bin/env bash
# gen-certs.sh DIR - development certificates for Midge's TLS listeners and its tests.
#
# Creates in DIR only the files that are missing (run it again: nothing changes), quietly;
# on a failure it prints what openssl said. Keys are EC P-256 (fast to make and to use).
# FOR DEVELOPMENT AND TESTS ONLY: the keys are unencrypted and the CA is not protected.
#
#   ca.crt, ca.key                   the development CA; give ca.crt to clients (--cafile)
#                                    and to the broker's `cafile` to accept client certificates
#   server.crt, server.key           the broker's certificate: CN localhost, SAN DNS:localhost,
#                                    IP:127.0.0.1, IP:::1 (`certfile`, `keyfile`)
#   client.crt, client.key           a client certificate, CN client1 (--cert/--key)
#   client-expired.crt, .key         CN client-expired, valid 2020-01-01..2021-01-01 only
#   client-revoked.crt, .key         CN client-revoked, listed in crl.pem
#   crl.pem                          the CA's CRL revoking client-revoked.crt (`crlfile`)
#   other-ca.crt, other-ca.key       an unrelated CA: certificates nobody above trusts
#   other-server.crt, .key           CN localhost (same SANs as server.crt), by other-ca
#   other-client.crt, .key           CN other-client, by other-ca
#   ca.cnf, ca-db/, other-ca-db/     the tiny `openssl ca` databases that signed the above
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
DIR=$1
mkdir -p "$DIR"
cd "$DIR"

DAYS=3650
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

# Run openssl quietly; show its output only when it fails.
ossl() {
    if ! openssl "$@" >"$LOG" 2>&1; then
        echo "gen-certs.sh: openssl $1 failed in $DIR:" >&2
        cat "$LOG" >&2
        exit 1
    fi
}

# The configuration of both CAs (`openssl ca -name ca_main|ca_other`) and of the
# certificate kinds (extension sections).
write_config() {
    [ -f ca.cnf ] && return
    cat >ca.cnf <<'EOF'
# Written by scripts/gen-certs.sh: the development CAs' databases and certificate profiles.
[ ca ]
default_ca = ca_main

[ ca_main ]
dir = ca-db
certificate = ca.crt
private_key = ca.key
database = $dir/index.txt
new_certs_dir = $dir/certs
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 3650
default_crl_days = 3650
policy = policy_any
rand_serial = yes
unique_subject = no
copy_extensions = none

[ ca_other ]
dir = other-ca-db
certificate = other-ca.crt
private_key = other-ca.key
database = $dir/index.txt
new_certs_dir = $dir/certs
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 3650
default_crl_days = 3650
policy = policy_any
rand_serial = yes
unique_subject = no
copy_extensions = none

[ policy_any ]
commonName = supplied

[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused

[ ext_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ ext_client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
}

new_db() { # new_db DIR
    [ -d "$1" ] && return
    mkdir -p "$1/certs"
    : >"$1/index.txt"
    echo 1000 >"$1/crlnumber"
}

new_key() { # new_key NAME.key
    [ -f "$1" ] && return
    ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.tmp"
    chmod 600 "$1.tmp"
    mv "$1.tmp" "$1"
}

new_ca() { # new_ca NAME CN
    local name=$1 cn=$2
    new_key "$name.key"
    [ -f "$name.crt" ] && return
    ossl req -config ca.cnf -new -x509 -days "$DAYS" -key "$name.key" -subj "/CN=$cn" \
        -extensions ext_ca -out "$name.crt.tmp"
    mv "$name.crt.tmp" "$name.crt"
}

# new_cert NAME CN CA_SECTION EXTENSIONS [openssl ca options...]
new_cert() {
    local name=$1 cn=$2 ca=$3 ext=$4
    shift 4
    new_key "$name.key"
    [ -f "$name.crt" ] && return
    ossl req -config ca.cnf -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
    ossl ca -config ca.cnf -name "$ca" -batch -notext -extensions "$ext" \
        -in "$name.csr" -out "$name.crt.tmp" "$@"
    rm -f "$name.csr"
    mv "$name.crt.tmp" "$name.crt"
}

write_config
new_db ca-db
new_db other-ca-db

new_ca ca "Midge development CA"
new_cert server localhost ca_main ext_server
new_cert client client1 ca_main ext_client
# `openssl x509 -not_before/-not_after` needs OpenSSL 3.4; Debian 12 has 3.0, whose
# `openssl ca` takes explicit dates.
new_cert client-expired client-expired ca_main ext_client \
    -startdate 20200101000000Z -enddate 20210101000000Z
new_cert client-revoked client-revoked ca_main ext_client

# Revoke client-revoked.crt once (index.txt marks it "R"), then (re)make the CRL.
if ! grep -q '^R.*/CN=client-revoked$' ca-db/index.txt; then
    ossl ca -config ca.cnf -name ca_main -batch -revoke client-revoked.crt \
        -crl_reason keyCompromise
    rm -f crl.pem
fi
if [ ! -f crl.pem ]; then
    ossl ca -config ca.cnf -name ca_main -batch -gencrl -out crl.pem.tmp
    mv crl.pem.tmp crl.pem
fi

new_ca other-ca "Midge other CA"
new_cert other-server localhost ca_other ext_server
new_cert other-client other-client ca_other ext_client
