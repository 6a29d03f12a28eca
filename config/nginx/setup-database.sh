#!/usr/bin/env bash
# An environment's database on this host (config/nginx/README.md), as root, after setup-host.sh
# (it made the env file and started Docker): PostgreSQL listening on localhost and the Docker
# bridge's address only, password logins from the bridge's network only, and a role and database
# of the environment's own whose password is made here and written into its env file only (never
# an argument of any program: it goes through bash's builtins and stdin). Safe to run again: a
# database, a role and an env file that exist are kept (a filled-in env file is checked by a login
# with its values, never rewritten).
#
#   bash setup-database.sh --env staging --file /etc/recordsponge/staging.env --schema FILE [--no-install]
#   bash setup-database.sh --env staging --file /etc/recordsponge/staging.env --check
#
# --check changes nothing: it fails, saying why, where a run would refuse what is there (`setup`
# runs it before it changes anything).
set -euo pipefail
env= file= schema= install=1 check=
while [ $# -gt 0 ]; do
  case $1 in
    --env) env=$2; shift 2 ;;
    --file) file=$2; shift 2 ;;
    --schema) schema=$2; shift 2 ;;
    --no-install) install=; shift ;;
    --check) check=1; shift ;;
    *) echo "setup-database.sh: unknown argument $1 (see the top of this file)" >&2; exit 2 ;;
  esac
done
say() { printf 'setup-database: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
changed=
did() { say "$*"; changed=1; }
[ "$(id -u)" = 0 ] || die "run it as root: sudo bash $0 $*"
# The environment's name makes SQL identifiers: letters, digits and _ only.
[[ $env =~ ^[a-z][a-z0-9_]*$ ]] || die "--env $env: a name of lowercase letters, digits and _"
name=recordsponge_$env

# (From /: postgres may not enter the admin's home, where this runs.)
psql() { (cd / && runuser -u postgres -- psql -X -q -t -A -v ON_ERROR_STOP=1 "$@"); }
# The env file's value of KEY (its last line KEY=...).
get() { local line value=; while IFS= read -r line; do [[ $line != "$1="* ]] || value=${line#*=}; done < "$file"; printf '%s' "$value"; }
# The host's address on Docker's default bridge (docker0); empty before Docker runs.
bridge_address() { ip -4 -o addr show docker0 2> /dev/null | awk '{ split($4, a, "/"); print a[1]; exit }'; }
# Whether PostgreSQL runs here (a cluster of Debian's packaging online).
postgres_up() { command -v pg_lsclusters > /dev/null && pg_lsclusters --no-header | awk '$4 == "online"' | grep -q .; }

# What a run refuses (and --check checks) before changing anything: a filled-in env file that
# does not log in; PGHOST without PGPASSWORD; a role or database of the environment's there
# without the env file's password. Before PostgreSQL is installed, --check cannot tell these:
# the run that installs it checks them. It leaves the env file's PGPASSWORD in $password (and,
# when that is set, its PGHOST, PGPORT, PGUSER, PGDATABASE in $host, $port, $user, $db): a run
# goes on from them.
refusals() {
  password=$(get PGPASSWORD)
  if [ -n "$password" ]; then
    command -v psql > /dev/null || return 0
    # Filled in (by an earlier run, or by hand): kept as it is, and it must log in.
    host=$(get PGHOST) port=$(get PGPORT) user=$(get PGUSER) db=$(get PGDATABASE)
    # The login itself (role, password, database), checked from here: over loopback when PGHOST
    # is this host's bridge address (a connection from the host to it would not come from the
    # bridge).
    via=$host
    [ "$host" != "$(bridge_address)" ] || via=127.0.0.1
    if ! why=$(PGPASSWORD=$password PGCONNECT_TIMEOUT=5 command psql -X -q -h "$via" -p "${port:-5432}" -U "$user" -d "$db" -c 'SELECT 1' 2>&1 > /dev/null); then
      die "$file names a database that does not log in (PGHOST=$host PGPORT=$port PGUSER=$user PGDATABASE=$db, and its PGPASSWORD): ${why//$'\n'/ }; correct it (sudoedit $file), or empty its PGHOST and PGPASSWORD lines to have this script make the database, then run this again"
    fi
  else
    [ -z "$(get PGHOST)" ] || die "$file sets PGHOST but no PGPASSWORD: fill in PGPASSWORD (an external database), or empty PGHOST to have this script make the database, then run this again"
    postgres_up || return 0
    [ -z "$(psql -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname = '$name'")" ] ||
      die "the role $name exists, and $file has no password for it: put its password in PGPASSWORD there, or drop the role (runuser -u postgres -- dropuser $name), then run this again"
    [ -z "$(psql -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$name'")" ] ||
      die "the database $name exists without its role: drop it (runuser -u postgres -- dropdb $name) if it holds nothing, or restore its role, then run this again"
  fi
}

if [ -n "$check" ]; then
  [ ! -f "$file" ] || refusals
  exit 0
fi
[ -f "$file" ] || die "$file does not exist: run setup-host.sh --env $env first"
[ -f "$schema" ] || die "--schema $schema does not exist"

# 1. PostgreSQL, its first cluster (Debian's packaging: pg_lsclusters, pg_conftool, pg_ctlcluster).
if ! command -v pg_lsclusters > /dev/null; then
  [ -n "$install" ] || die "PostgreSQL is not installed (run without --no-install)"
  did "installing postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || say "apt-get update reported errors (continuing)"
  apt-get install -y -q --no-install-recommends postgresql
fi
read -r version cluster _ < <(pg_lsclusters --no-header | head -n 1) || true
[ -n "${cluster:-}" ] || die "PostgreSQL has no cluster (pg_lsclusters lists none): pg_createcluster --start 15 main"
conf_dir=/etc/postgresql/$version/$cluster

# 2. Where the containers reach it: the host's address on Docker's default bridge (docker0),
# and the bridge's subnet (docker names no gateway when it chose the subnet itself).
gateway=$(bridge_address)
subnet=$(docker network inspect bridge --format '{{(index .IPAM.Config 0).Subnet}}')
[[ $gateway =~ ^[0-9.]+$ && $subnet =~ ^[0-9./]+$ ]] || die "Docker's bridge has no IPv4 address and subnet here (ip -4 addr show docker0; docker network inspect bridge)"

restart=
want="localhost,$gateway"
if [ "$(pg_conftool -s "$version" "$cluster" show listen_addresses 2> /dev/null || true)" != "$want" ]; then
  pg_conftool "$version" "$cluster" set listen_addresses "$want"
  did "PostgreSQL listens on $want only"
  restart=1
fi
hba=$conf_dir/pg_hba.conf
line="host $name $name $subnet scram-sha-256"
if ! grep -qxF "$line" "$hba"; then
  printf '# RecordSponge %s: its containers, from the Docker bridge (setup-database.sh)\n%s\n' "$env" "$line" >> "$hba"
  did "$hba: password logins to $name from $subnet"
  restart=${restart:-reload}
fi
if ! pg_ctlcluster "$version" "$cluster" status > /dev/null 2>&1; then
  pg_ctlcluster "$version" "$cluster" start
  did "started PostgreSQL $version/$cluster"
elif [ "$restart" = 1 ]; then
  pg_ctlcluster "$version" "$cluster" restart
elif [ -n "$restart" ]; then
  pg_ctlcluster "$version" "$cluster" reload
fi


# 3. The environment's role and database, and their login in its env file.
refusals
if [ -n "$password" ]; then
  say "$env: $file logs in to $db as $user (kept as it is)"
else
  # 24 letters and digits from the kernel's randomness; printf is bash's own (no argv).
  password=
  while [ ${#password} -lt 24 ]; do
    password+=$(head -c 48 /dev/urandom | base64 -w 0 | tr -dc 'A-Za-z0-9')
  done
  password=${password:0:24}
  printf "CREATE ROLE %s LOGIN PASSWORD '%s';\nCREATE DATABASE %s OWNER %s;\n" "$name" "$password" "$name" "$name" | psql -d postgres
  { printf 'SET ROLE %s;\n' "$name"; cat "$schema"; } | psql -d "$name" > /dev/null
  did "created the role and database $name, with the schema ($(basename "$schema"))"
  # The five settings replaced in place; every other line kept; owner and mode kept.
  tmp=$(mktemp "$file.XXXXXX")
  chown --reference="$file" "$tmp"
  chmod --reference="$file" "$tmp"
  declare -A values=([PGHOST]=$gateway [PGPORT]=5432 [PGDATABASE]=$name [PGUSER]=$name [PGPASSWORD]=$password)
  while IFS= read -r line; do
    key=${line%%=*}
    if [ -n "${values[$key]+set}" ] && [[ $line == *=* ]]; then
      printf '%s=%s\n' "$key" "${values[$key]}"
      unset "values[$key]"
    else
      printf '%s\n' "$line"
    fi
  done < "$file" > "$tmp"
  for key in "${!values[@]}"; do printf '%s=%s\n' "$key" "${values[$key]}" >> "$tmp"; done
  mv -f "$tmp" "$file"
  did "$file: the login of $name (its password is there only)"
fi
[ -n "$changed" ] || say "$env: nothing to change (the database was set up already)"
