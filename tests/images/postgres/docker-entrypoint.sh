#!/usr/bin/env bash
# Emulates the official postgres image's entrypoint (same variables, same steps),
# on Debian's postgresql-15 package.
#
# Honours: POSTGRES_PASSWORD, POSTGRES_USER (default postgres), POSTGRES_DB
# (default $POSTGRES_USER), POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD
# (default scram-sha-256; "trust" allows no password), each also as *_FILE
# (read from that file, e.g. a secret); PGDATA (default /var/lib/postgresql/data).
#
# On the first start (no $PGDATA/PG_VERSION) it runs initdb as user postgres,
# listens on '*', allows password logins from any host, creates the database,
# and runs /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz once, in name order,
# against a server reachable only through its Unix socket. Then it execs the
# command (postgres) as user postgres, so postgres is PID 1 and gets the signals.
set -Eeo pipefail

# file_env VAR [DEFAULT]: VAR from $VAR or from the file named by $VAR_FILE.
file_env() {
	local var=$1 file_var="${1}_FILE" def=${2:-}
	if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
		echo >&2 "error: both $var and $file_var are set (but are exclusive)"
		exit 1
	fi
	local val=$def
	if [ -n "${!var:-}" ]; then
		val=${!var}
	elif [ -n "${!file_var:-}" ]; then
		val=$(<"${!file_var}")
	fi
	export "$var"="$val"
	unset "$file_var"
}

# Runs SQL through the Unix socket of the temporary server.
run_psql() {
	psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

init_database() {
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"

	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		cat >&2 <<-'EOM'
			Error: Database is uninitialized and superuser password is not specified.
			       You must specify POSTGRES_PASSWORD to a non-empty value for the
			       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
			       (Or set POSTGRES_HOST_AUTH_METHOD=trust to allow all connections
			       without a password; not recommended.)
		EOM
		exit 1
	fi

	echo "initdb in $PGDATA for user $POSTGRES_USER"
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as upstream.
	initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
		$POSTGRES_INITDB_ARGS
	{
		echo
		echo "listen_addresses = '*'"
	} >>"$PGDATA/postgresql.conf"
	{
		echo
		echo "host all all all $POSTGRES_HOST_AUTH_METHOD"
	} >>"$PGDATA/pg_hba.conf"

	# A temporary server on the Unix socket only, so nobody sees a half-made database.
	PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
	if [ "$POSTGRES_DB" != postgres ]; then
		run_psql --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db" ;'
	fi
	local f
	for f in /docker-entrypoint-initdb.d/*; do
		case $f in
			*.sh)
				if [ -x "$f" ]; then
					echo "running $f"
					"$f"
				else
					echo "sourcing $f"
					# shellcheck disable=SC1090
					. "$f"
				fi
				;;
			*.sql) echo "running $f"; run_psql --dbname "$POSTGRES_DB" -f "$f" ;;
			*.sql.gz) echo "running $f"; gunzip -c "$f" | run_psql --dbname "$POSTGRES_DB" ;;
			*) if [ -e "$f" ]; then echo "ignoring $f"; fi ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop
	echo "PostgreSQL init process complete; ready for start up."
}

# Flags alone are postgres flags (e.g. `-c max_connections=200`).
if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" = postgres ]; then
	if [ "$(id -u)" = 0 ]; then
		# Read the *_FILE secrets while still root: a secret delivered with
		# mode 0400 is readable only by root. (Upstream reads them after
		# dropping privileges, so it needs them world-readable, as 0444 is.)
		for var in POSTGRES_PASSWORD POSTGRES_USER POSTGRES_DB POSTGRES_INITDB_ARGS; do
			file_var="${var}_FILE"
			if [ -n "${!file_var:-}" ]; then file_env "$var"; fi
		done
		# Make (or fix) the directories as root, then start again as postgres.
		mkdir -p "$PGDATA" /var/run/postgresql
		chown postgres:postgres "$PGDATA" /var/run/postgresql
		chmod 700 "$PGDATA"
		chmod 3777 /var/run/postgresql
		exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
	fi
	if [ ! -s "$PGDATA/PG_VERSION" ]; then
		init_database
	else
		echo "PostgreSQL database directory appears to contain a database; skipping initialization"
	fi
fi

exec "$@"
