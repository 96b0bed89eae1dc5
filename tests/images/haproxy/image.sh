# swarmctl-test/haproxy:2.6 stands in for the official haproxy:2.6 image, which
# ships no configuration: mount one at /usr/local/etc/haproxy/haproxy.cfg.
# Unlike upstream it runs as root (a config's `user haproxy` still works).
# CREATE: `docker create` options whose config `docker commit` keeps in the image.
CREATE=(
  --workdir /var/lib/haproxy
  # haproxy's soft stop, as upstream.
  --stop-signal SIGUSR1
  --entrypoint docker-entrypoint.sh
)
CMD=(haproxy -f /usr/local/etc/haproxy/haproxy.cfg)
DIRS=(/usr/local/etc/haproxy /var/lib/haproxy)
