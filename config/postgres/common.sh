# Shared by initdb.sh and dropdb.sh (sourced, not run). Runs inside the postgres container as
# the postgres OS user: `compose exec -T -u postgres postgres bash /var/lib/postgresql/config/X.sh`.

APP_ROLE=recordsponge
APP_DB=recordsponge
SUPERUSER=${POSTGRES_USER:-postgres}

# The container's env file (config/env/dev.env) sets PG* for the backend's connection; here we
# connect as the superuser over the local socket instead. PGPASSWORD is the app role's password.
APP_PASSWORD=${PGPASSWORD:-}
unset PGPASSWORD PGHOSTADDR PGSERVICE PGDATABASE PGOPTIONS
export PGHOST=${RS_PGSOCKET_DIR:-/var/run/postgresql} PGPORT=5432 PGUSER=$SUPERUSER

say() { printf '%s: %s\n' "${0##*/}" "$*"; }
die() { say "error: $*" >&2; exit 1; }

# Wait for the real server: during the image's first-run initialisation a temporary server
# answers on the socket only, so TCP on loopback tells that initialisation is over.
wait_for_server() {
    local tries=${RS_PG_WAIT_SECONDS:-60}
    until pg_isready -q -h 127.0.0.1 -p "$PGPORT" -d postgres; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || die "PostgreSQL is not accepting connections on 127.0.0.1:$PGPORT"
        sleep 1
    done
}

# psql as the superuser, stopping at the first error; extra args are passed on.
psql_super() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# One value from a query: query_value DB SQL
query_value() { psql -X -qtA -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
