#!/bin/sh
# As the official haproxy image's entrypoint: `haproxy ...` runs in master-worker
# mode (-W) in the foreground (-db); flags alone are passed to haproxy.
set -e
if [ "${1#-}" != "$1" ]; then
	set -- haproxy "$@"
fi
if [ "$1" = 'haproxy' ]; then
	shift
	set -- haproxy -W -db "$@"
fi
exec "$@"
