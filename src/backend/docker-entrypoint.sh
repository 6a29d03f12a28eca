#!/bin/sh
# Entry point of the backend images. When compose mounts an extra CA bundle (RS_CA_BUNDLE,
# for networks with a TLS-intercepting proxy) at $RS_EXTRA_CA, pip, pipenv and Python's TLS
# trust it in addition to the image's own CA store; without one, nothing changes.
set -eu
extra=${RS_EXTRA_CA:-/etc/recordsponge/extra-ca.crt}
if [ -s "$extra" ] && grep -q 'BEGIN CERTIFICATE' "$extra"; then
    bundle=${TMPDIR:-/tmp}/recordsponge-ca-bundle.crt
    system=/etc/ssl/certs/ca-certificates.crt
    if [ ! -s "$system" ]; then
        system=$(python -c 'from pip._vendor import certifi; print(certifi.where())' 2>/dev/null || true)
    fi
    { [ -n "$system" ] && [ -s "$system" ] && cat "$system"; cat "$extra"; } > "$bundle"
    export PIP_CERT="$bundle" REQUESTS_CA_BUNDLE="$bundle" SSL_CERT_FILE="$bundle"
fi
exec "$@"
