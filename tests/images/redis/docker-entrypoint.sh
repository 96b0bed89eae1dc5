#!/bin/sh
# As the official redis image's entrypoint: flags or a *.conf alone run redis-server;
# started as root, it hands /data to the redis user and drops privileges.
#
# The official image is built with protected mode off by default. Debian's is
# not, so `--protected-mode no` is added unless the arguments mention it
# (command-line options win over a config file, so a config file cannot turn
# it back on: pass --protected-mode yes for that).
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi
if [ "$1" = 'redis-server' ]; then
	case " $* " in
		*protected-mode*) ;;
		*) set -- "$@" --protected-mode no ;;
	esac
	if [ "$(id -u)" = '0' ]; then
		find . \! -user redis -exec chown redis '{}' +
		exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
	fi
	# Like the official image: files redis creates are private by default.
	if [ "$(umask)" = '0022' ]; then
		umask 0077
	fi
fi
exec "$@"
