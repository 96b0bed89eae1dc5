# swarmctl-test/zookeeper:3.8 stands in for the official zookeeper:3.8 image:
# same ZOO_* variables, /conf/zoo.cfg, /data, /datalog, and `zkServer.sh
# start-foreground` / `zkServer.sh status` / `zkCli.sh` on PATH. It runs
# Debian's libzookeeper-java on OpenJDK 17, as root (upstream: user zookeeper).
# CREATE: `docker create` options whose config `docker commit` keeps in the image.
CREATE=(
  --env ZOO_CONF_DIR=/conf
  --env ZOO_DATA_DIR=/data
  --env ZOO_DATA_LOG_DIR=/datalog
  --env ZOO_LOG_DIR=/logs
  --env ZOO_TICK_TIME=2000
  --env ZOO_INIT_LIMIT=5
  --env ZOO_SYNC_LIMIT=2
  --env ZOO_AUTOPURGE_PURGEINTERVAL=0
  --env ZOO_AUTOPURGE_SNAPRETAINCOUNT=3
  --env ZOO_MAX_CLIENT_CNXNS=60
  --env ZOO_STANDALONE_ENABLED=true
  --env ZOO_ADMINSERVER_ENABLED=true
  --expose 2181 --expose 2888 --expose 3888 --expose 8080
  --entrypoint docker-entrypoint.sh
)
CMD=(zkServer.sh start-foreground)
DIRS=(/conf /data /datalog /logs)
# Anonymous volumes, as the official image declares them.
VOLUMES=(/data /datalog /logs)
