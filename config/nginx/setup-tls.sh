#!/usr/bin/env bash
# A certificate for an environment's domain from an ACME server (Let's Encrypt by default), as
# root, after setup-host.sh: certbot's webroot (the http site serves /.well-known/acme-challenge/
# from /var/www/letsencrypt), and a renewal hook that reloads nginx. Run setup-host.sh again
# afterwards: it installs the TLS site once the certificate exists. Safe to run again: a
# certificate valid for 30 days more is kept.
#
#   bash setup-tls.sh --domain staging.recordsponge.com [--directory URL] [--email ADDRESS]
#                     [--ca FILE] [--no-install]
#
# --directory  the ACME server's directory (default: Let's Encrypt's)
# --email      where the ACME server sends expiry notices (default: none)
# --ca         the CA that signs the ACME server's own https (a test server's, like Pebble's)
set -euo pipefail
domain= directory=https://acme-v02.api.letsencrypt.org/directory email= ca= install=1
while [ $# -gt 0 ]; do
  case $1 in
    --domain) domain=$2; shift 2 ;;
    --directory) directory=$2; shift 2 ;;
    --email) email=$2; shift 2 ;;
    --ca) ca=$2; shift 2 ;;
    --no-install) install=; shift ;;
    *) echo "setup-tls.sh: unknown argument $1 (see the top of this file)" >&2; exit 2 ;;
  esac
done
say() { printf 'setup-tls: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
changed=
did() { say "$*"; changed=1; }
[ "$(id -u)" = 0 ] || die "run it as root: sudo bash $0 $*"
[[ $domain =~ ^[A-Za-z0-9][A-Za-z0-9.-]*$ ]] || die "--domain $domain is not a domain name"
[ -z "$ca" ] || [ -f "$ca" ] || die "--ca $ca does not exist"

# 1. certbot and openssl.
if ! command -v certbot > /dev/null || ! command -v openssl > /dev/null; then
  [ -n "$install" ] || die "certbot or openssl is not installed (run without --no-install)"
  did "installing certbot openssl"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || say "apt-get update reported errors (continuing)"
  apt-get install -y -q --no-install-recommends certbot openssl
fi

# 2. The certificate, unless one is valid for 30 days more.
live=/etc/letsencrypt/live/$domain/fullchain.pem
if [ -s "$live" ] && openssl x509 -checkend $((30 * 86400)) -noout -in "$live" > /dev/null; then
  say "$domain: its certificate is valid for 30 days more (kept)"
else
  account=(--register-unsafely-without-email)
  [ -z "$email" ] || account=(--email "$email")
  [ -z "$ca" ] || export REQUESTS_CA_BUNDLE=$ca
  certbot certonly --non-interactive --agree-tos --quiet "${account[@]}" --server "$directory" \
    --webroot --webroot-path /var/www/letsencrypt --domain "$domain" --keep-until-expiring ||
    die "no certificate for $domain from $directory (certbot says why above; /var/log/letsencrypt/letsencrypt.log has it all). The ACME server fetches http://$domain/.well-known/acme-challenge/...: $domain must point at this host, and its port 80 be open"
  did "obtained a certificate for $domain from $directory"
fi

# 3. Renewals (certbot's own timer) reload nginx, which then serves the new certificate.
hook=/etc/letsencrypt/renewal-hooks/deploy/reload-nginx
want=$'#!/bin/sh\n# Made by setup-tls.sh: nginx serves a renewed certificate.\nnginx -s reload\n'
if [ "$(cat "$hook" 2> /dev/null)"$'\n' != "$want" ]; then
  install -d -m 755 "$(dirname "$hook")"
  printf '%s' "$want" > "$hook"
  chmod 755 "$hook"
  did "wrote $hook"
fi
[ -n "$changed" ] || say "$domain: nothing to change"
