#!/usr/bin/env bash
# Runs RabbitMQ like the official image: in the foreground, as user rabbitmq
# (exec, so it is PID 1 and gets the signals), logging to the console.
# RABBITMQ_DEFAULT_USER, RABBITMQ_DEFAULT_PASS and RABBITMQ_DEFAULT_VHOST are
# written to /etc/rabbitmq/conf.d/20-env.conf (they apply when the node's
# database is first created).
set -euo pipefail

if [ "${1:0:1}" = '-' ]; then
	set -- rabbitmq-server "$@"
fi

if [ "$1" = rabbitmq-server ]; then
	if [ "$(id -u)" = 0 ]; then
		{
			[ -z "${RABBITMQ_DEFAULT_USER:-}" ] || echo "default_user = $RABBITMQ_DEFAULT_USER"
			[ -z "${RABBITMQ_DEFAULT_PASS:-}" ] || echo "default_pass = $RABBITMQ_DEFAULT_PASS"
			[ -z "${RABBITMQ_DEFAULT_VHOST:-}" ] || echo "default_vhost = $RABBITMQ_DEFAULT_VHOST"
		} >/etc/rabbitmq/conf.d/20-env.conf
		mkdir -p /var/lib/rabbitmq /var/log/rabbitmq
		chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq /etc/rabbitmq/conf.d
		shift
		# Debian's /usr/sbin/rabbitmq-server would send the logs to files.
		server=$(echo /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server)
		HOME=/var/lib/rabbitmq exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$server" "$@"
	fi
fi

exec "$@"
