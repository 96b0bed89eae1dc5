# swarmctl-test/rabbitmq:3.10 stands in for the official rabbitmq:3.10 image:
# RABBITMQ_DEFAULT_USER / _PASS / _VHOST, data in /var/lib/rabbitmq, guest may
# log in from other hosts, logs on the console, rabbitmqctl and
# rabbitmq-diagnostics on PATH (e.g. `rabbitmq-diagnostics -q ping`).
# CREATE: `docker create` options whose config `docker commit` keeps in the image.
CREATE=(
  --env RABBITMQ_LOGS=-
  --expose 4369 --expose 5671 --expose 5672 --expose 15691 --expose 15692 --expose 25672
  --entrypoint docker-entrypoint.sh
)
CMD=(rabbitmq-server)
# Anonymous volumes, as the official image declares them.
VOLUMES=(/var/lib/rabbitmq)
