# swarmctl-test/nats:2.9 stands in for the official nats:2.9 image: /nats-server
# with /nats-server.conf (clients 4222, monitoring 8222, routes 6222).
# CREATE: `docker create` options whose config `docker commit` keeps in the image.
CREATE=(
  --expose 4222 --expose 6222 --expose 8222
  --entrypoint /nats-server
)
CMD=(--config nats-server.conf)
