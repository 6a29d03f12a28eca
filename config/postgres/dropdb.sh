#!/usr/bin/env bash
# Drop the app's database and role (all data in them is lost). Idempotent. Run inside the
# postgres container:
#   compose exec -T -u postgres postgres bash /var/lib/postgresql/config/dropdb.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

wait_for_server

if [ "$(query_value postgres "SELECT count(*) FROM pg_database WHERE datname = '$APP_DB'")" = 1 ]; then
    # FORCE ends the backend's open connections (PostgreSQL 13+).
    psql_super -d postgres -v db="$APP_DB" <<'SQL'
DROP DATABASE :"db" WITH (FORCE);
SQL
    say "dropped database $APP_DB"
else
    say "database $APP_DB does not exist"
fi

if [ "$(query_value postgres "SELECT count(*) FROM pg_roles WHERE rolname = '$APP_ROLE'")" = 1 ]; then
    psql_super -d postgres -v role="$APP_ROLE" <<'SQL'
DROP ROLE :"role";
SQL
    say "dropped role $APP_ROLE"
else
    say "role $APP_ROLE does not exist"
fi
