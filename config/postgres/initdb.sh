#!/usr/bin/env bash
# Create the app's role, database, schema and dev seed users. Idempotent: on an initialized
# database it says "already initialized" and changes nothing. Run inside the postgres container:
#   compose exec -T -u postgres postgres bash /var/lib/postgresql/config/initdb.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

wait_for_server

role_exists=$(query_value postgres "SELECT count(*) FROM pg_roles WHERE rolname = '$APP_ROLE'")
db_exists=$(query_value postgres "SELECT count(*) FROM pg_database WHERE datname = '$APP_DB'")
schema_exists=0
if [ "$db_exists" = 1 ]; then
    schema_exists=$(query_value "$APP_DB" "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'users'")
fi

if [ "$role_exists" = 1 ] && [ "$db_exists" = 1 ] && [ "$schema_exists" = 1 ]; then
    say "database $APP_DB already initialized (role, database and schema exist); nothing changed"
    exit 0
fi

# What was done, said in one line at the end.
done_list=()

if [ "$role_exists" = 1 ]; then
    done_list+=("kept the existing role $APP_ROLE")
else
    [ -n "$APP_PASSWORD" ] || die "PGPASSWORD (the app role's password, from the env file) is not set"
    psql_super -d postgres -v role="$APP_ROLE" -v password="$APP_PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
SQL
    done_list+=("created role $APP_ROLE (password from the env file)")
fi

if [ "$db_exists" = 1 ]; then
    done_list+=("kept the existing database $APP_DB")
else
    psql_super -d postgres -v db="$APP_DB" -v role="$APP_ROLE" <<'SQL'
CREATE DATABASE :"db" OWNER :"role";
SQL
    done_list+=("created database $APP_DB")
fi

# Schema and seed in one transaction, as the app role so that it owns the tables.
{
    printf 'BEGIN;\nSET LOCAL ROLE %s;\n' "$APP_ROLE"
    cat "$here/schema.sql" "$here/seed.sql"
    printf 'COMMIT;\n'
} | psql_super -d "$APP_DB"
users=$(query_value "$APP_DB" "SELECT string_agg(email, ', ' ORDER BY user_id) FROM users")
done_list+=("applied schema.sql" "seeded $users")
summary=$(IFS=';'; echo "${done_list[*]}")
say "database $APP_DB initialized: ${summary//;/, }"
