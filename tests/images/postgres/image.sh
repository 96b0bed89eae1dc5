# swarmctl-test/postgres:15 stands in for the official postgres:15 image:
# same variables, data directory, entrypoint behaviour and tools on PATH.
# CREATE: `docker create` options whose config `docker commit` keeps in the image.
CREATE=(
  --env PG_MAJOR=15
  --env PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  --env PGDATA=/var/lib/postgresql/data
  --expose 5432
  # As upstream: SIGINT is PostgreSQL's "fast" shutdown (SIGTERM also stops it
  # cleanly, but waits for clients to disconnect first).
  --stop-signal SIGINT
  --entrypoint docker-entrypoint.sh
)
CMD=(postgres)
# Directories to create in the image.
DIRS=(/docker-entrypoint-initdb.d /var/lib/postgresql/data)
# Anonymous volumes, as the official image declares them.
VOLUMES=(/var/lib/postgresql/data)
