#!/usr/bin/env bash
# RecordSponge's entrypoint for its local `postgres:15-bookworm` image (config/images/postgres).
# It covers what the project uses of the official image, nothing more.
#
# `docker run IMAGE` or `docker run IMAGE postgres [OPTION...]` (or only options):
#   1. As root: PGDATA and the socket directory are handed to the postgres user, and the script
#      starts again as that user.
#   2. PGDATA without a cluster (first start): a cluster is made by `initdb`, with
#        POSTGRES_USER      the superuser (default: postgres)
#        POSTGRES_PASSWORD  its password; required on first start
#        POSTGRES_DB        a database created for it, unless it is `postgres` (default: the user)
#        PGDATA             where (default: /var/lib/postgresql/data)
#      The local socket and loopback are trusted, every other host logs in with a scram-sha-256
#      password, and the server listens on all addresses. No server runs during this (the
#      database is created by a single-user backend), so anything answering on TCP is the real
#      server with initialization over. A PGDATA holding a cluster is used as it is.
#   3. postgres replaces this script (exec: PID 1 of the container, as user postgres), so
#      `docker stop` (SIGINT, the image's STOPSIGNAL) or SIGTERM shuts it down cleanly.
# Any other command (`docker run IMAGE bash`) runs unchanged, with none of the above.
set -euo pipefail

fail() {
	printf 'docker-entrypoint.sh: error: %s\n' "$*" >&2
	exit 1
}

if [ "$#" -eq 0 ] || [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi
if [ "$1" != 'postgres' ]; then
	exec "$@"
fi

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
self="${BASH_SOURCE[0]}"

if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 0700 "$PGDATA"
	exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$self" "$@"
fi

if [ -s "$PGDATA/PG_VERSION" ]; then
	printf 'docker-entrypoint.sh: %s holds a PostgreSQL %s cluster: using it as it is\n' \
		"$PGDATA" "$(cat "$PGDATA/PG_VERSION")"
else
	superuser="${POSTGRES_USER:-postgres}"
	database="${POSTGRES_DB:-$superuser}"
	[ -n "${POSTGRES_PASSWORD:-}" ] ||
		fail "$PGDATA holds no database cluster yet, and POSTGRES_PASSWORD is not set: give the" \
			"superuser ($superuser) a password, e.g. docker run -e POSTGRES_PASSWORD=... (needed on" \
			"first start only)"
	printf 'docker-entrypoint.sh: no cluster in %s: creating one (superuser %s, database %s)\n' \
		"$PGDATA" "$superuser" "$database"

	# The password reaches initdb through a pipe, never a file or the command line.
	initdb --pgdata="$PGDATA" --username="$superuser" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
		--auth-local=trust --auth-host=trust --no-instructions
	{
		printf '\n# docker-entrypoint.sh: other hosts log in with a password\n'
		printf 'host all all all scram-sha-256\n'
	} >>"$PGDATA/pg_hba.conf"
	printf "\n# docker-entrypoint.sh\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

	if [ "$database" != postgres ]; then
		# A single-user backend runs the statement read from stdin: no server, no socket, no
		# port. It exits 0 after an SQL error, hence the look at its messages.
		if ! messages=$(printf 'CREATE DATABASE "%s"\n' "${database//\"/\"\"}" |
			postgres --single -D "$PGDATA" postgres 2>&1 >/dev/null) ||
			[[ "$messages" == *ERROR:* ]]; then
			fail "could not create database $database:"$'\n'"$messages"
		fi
		printf 'docker-entrypoint.sh: created database %s\n' "$database"
	fi
	printf 'docker-entrypoint.sh: cluster ready in %s; starting the server\n' "$PGDATA"
fi

exec "$@"
