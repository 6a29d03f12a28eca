#!/usr/bin/env bash
# Checks the production nginx sites of this directory with `nginx -t`, in a throwaway copy of
# Debian's main config (/etc/nginx/nginx.conf) with a self-signed certificate in a temp dir, so
# no certificate, no /etc/nginx/recordsponge and no running nginx are needed.
# Needs nginx and openssl (xtask/testbed/host.sh installs nginx). Prints nginx's verdict.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v nginx > /dev/null || { echo "check.sh: nginx is not installed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/sites"

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=recordsponge.test \
  -keyout "$tmp/privkey.pem" -out "$tmp/fullchain.pem" 2> /dev/null
for env in staging prod; do
  cp "$here/$env.upstream.conf" "$tmp/"
  sed -e "s#/etc/letsencrypt/live/[^/]*/#$tmp/#" \
      -e "s#/etc/nginx/recordsponge/#$tmp/#" \
      "$here/recordsponge-$env.conf" > "$tmp/sites/recordsponge-$env.conf"
done

# Debian's main config as on the production host, with its sites and conf.d replaced by ours
# and its pid and logs moved to the temp dir.
main=/etc/nginx/nginx.conf
[ -f "$main" ] || { echo "check.sh: $main not found (Debian's nginx package)" >&2; exit 1; }
sed -e "s#include /etc/nginx/sites-enabled/\*;#include $tmp/sites/*.conf;#" \
    -e "s#include /etc/nginx/conf.d/\*.conf;##" \
    -e "s#/var/log/nginx/#$tmp/#g" \
    -e "s#^pid .*#pid $tmp/nginx.pid;#" \
    "$main" > "$tmp/nginx.conf"
grep -q "include $tmp/sites/" "$tmp/nginx.conf" || { echo "check.sh: $main has no sites-enabled include" >&2; exit 1; }

nginx -e "$tmp/error.log" -c "$tmp/nginx.conf" -t
