# swarmctl-test/prometheus:2 stands in for the official prom/prometheus image:
# same entrypoint, flags, config path (/etc/prometheus/prometheus.yml, scraping
# itself), data in /prometheus, runs as nobody.
# CREATE: `docker create` options whose config `docker commit` keeps in the image.
CREATE=(
  --user nobody
  --workdir /prometheus
  --expose 9090
  --entrypoint /bin/prometheus
)
CMD=(
  --config.file=/etc/prometheus/prometheus.yml
  --storage.tsdb.path=/prometheus
  --web.console.libraries=/usr/share/prometheus/console_libraries
  --web.console.templates=/usr/share/prometheus/consoles
)
# Directories to create in the image, PATH[:UID:GID].
DIRS=(/prometheus:65534:65534)
# Anonymous volumes, as the official image declares them.
VOLUMES=(/prometheus)
