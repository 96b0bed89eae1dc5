#!/bin/sh
# As the official memcached image's entrypoint: flags alone are memcached flags.
set -e
if [ "${1#-}" != "$1" ]; then
	set -- memcached "$@"
fi
exec "$@"
