# swarmctl-test/memcached:1.6 stands in for the official memcached:1.6 image.
# CREATE: `docker create` options whose config `docker commit` keeps in the image.
CREATE=(
  --user memcache
  --expose 11211
  --entrypoint docker-entrypoint.sh
)
CMD=(memcached)
