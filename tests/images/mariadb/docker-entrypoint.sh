#!/usr/bin/env bash
# Emulates the official mariadb/mysql images' entrypoint on Debian's mariadb-server.
#
# Honours (MARIADB_* or MYSQL_*, each also as *_FILE): ROOT_PASSWORD,
# ALLOW_EMPTY_ROOT_PASSWORD (MYSQL_ALLOW_EMPTY_PASSWORD), RANDOM_ROOT_PASSWORD,
# ROOT_HOST (default %), DATABASE, USER, PASSWORD.
#
# On the first start (no /var/lib/mysql/mysql) it installs the system tables,
# sets the root password (root@localhost and root@ROOT_HOST), creates the
# database and user, and runs /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz
# once against a server without networking. Then it execs mariadbd as user
# mysql, so the server is PID 1 and gets the signals.
set -Eeo pipefail

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock

# env_var NAME [DEFAULT]: MARIADB_NAME or MYSQL_NAME, or the file their *_FILE names.
env_var() {
	local name=$1 v
	for v in "MARIADB_$name" "MYSQL_$name"; do
		if [ -n "${!v:-}" ]; then
			printf '%s' "${!v}"
			return
		fi
		local f="${v}_FILE"
		if [ -n "${!f:-}" ]; then
			cat "${!f}"
			return
		fi
	done
	printf '%s' "${2:-}"
}

# Quotes a value for a single-quoted SQL string literal.
sql_escape() {
	sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/\\\\'/g" <<<"$1"
}

init_database() {
	local root_password allow_empty random root_host database user password
	root_password=$(env_var ROOT_PASSWORD)
	allow_empty=$(env_var ALLOW_EMPTY_ROOT_PASSWORD)
	[ -n "$allow_empty" ] || allow_empty=$(env_var ALLOW_EMPTY_PASSWORD)
	random=$(env_var RANDOM_ROOT_PASSWORD)
	root_host=$(env_var ROOT_HOST %)
	database=$(env_var DATABASE)
	user=$(env_var USER)
	password=$(env_var PASSWORD)

	if [ -z "$root_password" ] && [ -z "$allow_empty" ] && [ -z "$random" ]; then
		echo >&2 'error: database is uninitialized and password option is not specified'
		echo >&2 '  You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD'
		exit 1
	fi
	if [ -n "$random" ]; then
		root_password=$(head -c 18 /dev/urandom | base64)
		echo "GENERATED ROOT PASSWORD: $root_password"
	fi

	echo "Installing the system tables into $DATADIR"
	mariadb-install-db --datadir="$DATADIR" --auth-root-authentication-method=normal \
		--skip-test-db --skip-name-resolve >/dev/null

	echo "Starting a temporary server (no networking)"
	mariadbd --skip-networking --socket="$SOCKET" --datadir="$DATADIR" &
	local pid=$! _
	for _ in $(seq 60); do
		mariadb-admin --socket="$SOCKET" -uroot ping >/dev/null 2>&1 && break
		kill -0 "$pid" 2>/dev/null || { echo >&2 "error: the temporary server died"; exit 1; }
		sleep 0.5
	done

	local rp
	rp=$(sql_escape "$root_password")
	{
		echo "SET @@SESSION.SQL_LOG_BIN=0;"
		echo "DROP USER IF EXISTS root@'127.0.0.1', root@'::1';"
		echo "SET PASSWORD FOR 'root'@'localhost' = PASSWORD('$rp');"
		if [ "$root_host" != localhost ]; then
			echo "CREATE USER 'root'@'$root_host' IDENTIFIED BY '$rp';"
			echo "GRANT ALL ON *.* TO 'root'@'$root_host' WITH GRANT OPTION;"
		fi
		if [ -n "$database" ]; then
			echo "CREATE DATABASE IF NOT EXISTS \`$database\`;"
		fi
		if [ -n "$user" ] && [ -n "$password" ]; then
			echo "CREATE USER '$user'@'%' IDENTIFIED BY '$(sql_escape "$password")';"
			if [ -n "$database" ]; then
				echo "GRANT ALL ON \`$database\`.* TO '$user'@'%';"
			fi
		fi
	} | mariadb --socket="$SOCKET" -uroot

	export MYSQL_PWD=$root_password
	local f client=(mariadb --socket="$SOCKET" -uroot ${database:+"--database=$database"})
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
			*.sql) echo "running $f"; "${client[@]}" <"$f" ;;
			*.sql.gz) echo "running $f"; gunzip -c "$f" | "${client[@]}" ;;
			*) if [ -e "$f" ]; then echo "ignoring $f"; fi ;;
		esac
	done

	mariadb-admin --socket="$SOCKET" -uroot shutdown
	wait "$pid"
	unset MYSQL_PWD
	echo "MariaDB init process done. Ready for start up."
}

# Flags alone are mariadbd flags.
if [ "${1:0:1}" = '-' ]; then
	set -- mariadbd "$@"
fi

if [ "$1" = mariadbd ] || [ "$1" = mysqld ]; then
	if [ "$(id -u)" = 0 ]; then
		# Read the *_FILE secrets while still root (a secret of mode 0400 is
		# readable only by root); the values pass on in the environment.
		for file_var in $(compgen -v | grep -E '^(MARIADB|MYSQL)_[A-Z_]+_FILE$' || true); do
			export "${file_var%_FILE}=$(cat "${!file_var}")"
			unset "$file_var"
		done
		mkdir -p "$DATADIR" /run/mysqld
		chown mysql:mysql "$DATADIR" /run/mysqld
		exec setpriv --reuid=mysql --regid=mysql --init-groups "${BASH_SOURCE[0]}" "$@"
	fi
	if [ ! -d "$DATADIR/mysql" ]; then
		init_database
	fi
fi

exec "$@"
