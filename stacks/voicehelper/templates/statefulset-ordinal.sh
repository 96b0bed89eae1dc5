#!/bin/sh
# Entrypoint helper for clustered statefulsets:
#   statefulset-ordinal.sh SERVICE SIZE COMMAND [ARG...]
# exports ORDINAL (0..SIZE-1) of this replica, then runs COMMAND (which may use $ORDINAL).
# swarmctl gives ordinal N of a statefulset the DNS name SERVICE-N on the stack's networks (the
# stable names a Kubernetes StatefulSet gets from its headless service); a hostname ending in -N
# (Kubernetes style) is used as is.
set -e
service=$1
size=$2
shift 2
host=$(hostname)
ordinal=
case "$host" in
  *-*) case "${host##*-}" in ''|*[!0-9]*) ;; *) ordinal=${host##*-} ;; esac ;;
esac
if [ -z "$ordinal" ]; then
  mine=$(hostname -i 2>/dev/null || awk -v h="$host" '$2 == h { print $1 }' /etc/hosts)
  i=0
  while [ "$i" -lt "$size" ] && [ -z "$ordinal" ]; do
    ip=$(getent hosts "$service-$i" | awk '{ print $1; exit }')
    for m in $mine; do
      if [ -n "$ip" ] && [ "$ip" = "$m" ]; then ordinal=$i; fi
    done
    i=$((i + 1))
  done
fi
if [ -z "$ordinal" ]; then
  echo "$service: cannot tell my ordinal: no name $service-0..$((size - 1)) resolves to this container" >&2
  exit 1
fi
export ORDINAL="$ordinal"
echo "$service: ordinal $ORDINAL of $size"
exec "$@"
