#!/usr/bin/env bash
# Checks the site templates of this directory with `nginx -t`, rendered as setup-host.sh
# renders them (TLS and plain http, staging and prod), and the Swarm stack's proxy
# (../swarm/proxy.conf), in a throwaway copy of Debian's main config with a self-signed
# certificate in a temp dir: no certificate, no /etc/nginx/recordsponge and no running nginx
# needed. Needs nginx and openssl. Prints nginx's verdict. (The deploy suite runs it on a host.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v nginx > /dev/null || { echo "check.sh: nginx is not installed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/sites" "$tmp/live"

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=recordsponge.test \
  -keyout "$tmp/privkey.pem" -out "$tmp/fullchain.pem" 2> /dev/null
cp "$here/proxy.conf" "$tmp/"
port=8000
for env in staging prod; do
  printf 'upstream recordsponge_%s { server 127.0.0.1:9 down; }\n' "$env" > "$tmp/$env.upstream.conf"
  for template in site.conf.in site-http.conf.in; do
    port=$((port + 1))
    sed -e "s/@ENV@/$env/g" -e "s/@DOMAIN@/$env-$port.recordsponge.test/g" -e "s/@HTTP_PORT@/$port/g" \
        -e "s#/etc/letsencrypt/live/[^/]*/#$tmp/#" -e "s#/etc/nginx/recordsponge/#$tmp/#" \
        -e "s#listen 443 ssl#listen $((port + 100)) ssl#; s#listen \[::\]:443 ssl#listen [::]:$((port + 100)) ssl#" \
        "$here/$template" > "$tmp/sites/$env-$template.conf"
  done
  # Both templates of one environment include its upstream, which nginx refuses twice: once here.
  sed -i "s#^include $tmp/$env.upstream.conf;##" "$tmp/sites/$env"-*.conf
  echo "include $tmp/$env.upstream.conf;" > "$tmp/sites/$env-upstream.conf"
done

# The Swarm proxy's server, on a port of its own.
sed -e "s/listen 80;/listen 8200;/" "$here/../swarm/proxy.conf" > "$tmp/sites/swarm-proxy.conf"

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
