# swarmctl-test/redis:7 stands in for the official redis:7 image.
# CREATE: `docker create` options whose config `docker commit` keeps in the image.
CREATE=(
  --workdir /data
  --expose 6379
  --entrypoint docker-entrypoint.sh
)
CMD=(redis-server --protected-mode no)
DIRS=(/data)
# Anonymous volumes, as the official image declares them.
VOLUMES=(/data)
