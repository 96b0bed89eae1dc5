#!/usr/bin/env bash
# Smoke test of the default test images with plain `docker run` on a user-defined
# bridge network: testapp (server and client modes, health, KV on a volume,
# signals, job exit codes), postgres (password login from another container,
# *_FILE secrets, initdb.d), haproxy (TCP to postgres, HTTP to testapp), redis.
#
#   bash tests/images/smoke.sh        builds missing images first (build.sh, cached)
#   bash tests/images/smoke.sh --all  also the extra servers (mariadb, nats, zookeeper, ...)
#
# Everything it creates carries the label swarmctl-smoke=<pid> and is removed on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUN_ID=swarmctl-smoke-$$
NET=$RUN_ID
TESTAPP=swarmctl-test/testapp:latest
POSTGRES=swarmctl-test/postgres:15
REDIS=swarmctl-test/redis:7
HAPROXY=swarmctl-test/haproxy:2.6
SCRATCH=

step() { printf '[smoke] %s\n' "$*"; }
fail() {
  printf '[smoke] FAIL: %s\n' "$*" >&2
  exit 1
}

cleanup() {
  local status=$? id ids=()
  mapfile -t ids < <(docker ps -aq --filter "label=swarmctl-smoke=$$")
  if ((status != 0)); then
    for id in "${ids[@]}"; do
      printf '[smoke] --- logs of %s\n' "$(docker inspect -f '{{.Name}}' "$id")" >&2
      docker logs --tail 20 "$id" >&2 2>&1 || true
    done
  fi
  if ((${#ids[@]})); then docker rm -fv "${ids[@]}" >/dev/null 2>&1 || true; fi
  docker network rm "$NET" >/dev/null 2>&1 || true
  docker volume rm "$RUN_ID-data" >/dev/null 2>&1 || true
  if [[ -n $SCRATCH ]]; then rm -rf "$SCRATCH"; fi
  if ((status == 0)); then step "all passed in ${SECONDS} s"; fi
}
trap cleanup EXIT

# Runs a container in the background on our network, reachable by the alias NAME.
start() { # NAME [docker run options...] IMAGE [args...]
  local name=$1
  shift
  docker run -d --name "$RUN_ID-$name" --network "$NET" --network-alias "$name" \
    --label "swarmctl-smoke=$$" "$@" >/dev/null
}

# Creates such a container without starting it, so files can be copied in first.
create() { # NAME [docker create options...] IMAGE [args...]
  local name=$1
  shift
  docker create --name "$RUN_ID-$name" --network "$NET" --network-alias "$name" \
    --label "swarmctl-smoke=$$" "$@" >/dev/null
}

# A one-off container on our network (as another service of a stack would be).
probe() { # [docker run options...] IMAGE [args...]
  docker run --rm --network "$NET" --label "swarmctl-smoke=$$" "$@"
}

# Retries a command until it succeeds, for at most SECONDS.
wait_until() { # SECONDS DESCRIPTION CMD...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out waiting for $what"
    sleep 0.3
  done
}

expect_eq() { # WHAT GOT WANT
  [[ $2 == "$3" ]] || fail "$1: got '$2', want '$3'"
}

# grep on captured text: `cmd | grep -q` would fail under pipefail when grep
# exits early and cmd gets SIGPIPE.
expect_match() { # WHAT REGEX TEXT
  grep -qE -- "$2" <<<"$3" || fail "$1: nothing matches /$2/ in:
$(tail -n 20 <<<"$3")"
}

expect_status() { # WHAT WANT CMD...
  local what=$1 want=$2 got=0
  shift 2
  "$@" >/dev/null 2>&1 || got=$?
  ((got == want)) || fail "$what: exit status $got, want $want"
}

ALL=
case ${1:-} in
  --all) ALL=1 ;;
  "") ;;
  *) fail "usage: smoke.sh [--all]" ;;
esac

if [[ -n $ALL ]]; then bash "$HERE/build.sh" --all; else bash "$HERE/build.sh"; fi
SCRATCH=$(mktemp -d)
docker network create --label "swarmctl-smoke=$$" "$NET" >/dev/null
step "network $NET"

# --- start the servers (they come up in parallel while the checks run)
mkdir "$SCRATCH/secrets"
printf 'secret\n' >"$SCRATCH/secrets/pg_password"
chmod 0400 "$SCRATCH/secrets/pg_password" # as swarmctl may deliver secrets: root-only
cat >"$SCRATCH/01-schema.sql" <<'EOF'
CREATE TABLE greetings (word text);
INSERT INTO greetings VALUES ('hello');
EOF
create pg -e POSTGRES_USER=app -e POSTGRES_DB=appdb -e POSTGRES_PASSWORD_FILE=/run/secrets/pg_password "$POSTGRES"
docker cp "$SCRATCH/secrets" "$RUN_ID-pg:/run/secrets"
docker cp "$SCRATCH/01-schema.sql" "$RUN_ID-pg:/docker-entrypoint-initdb.d/01-schema.sql"
docker start "$RUN_ID-pg" >/dev/null
start redis "$REDIS"
docker volume create --label "swarmctl-smoke=$$" "$RUN_ID-data" >/dev/null
start app -e TESTAPP_PORTS=8080,9090 -e TESTAPP_START_DELAY=5s -e GREETING=hello -v "$RUN_ID-data:/data" \
  --health-cmd '/testapp check http://127.0.0.1:8080/health' --health-interval 1s --health-retries 30 "$TESTAPP"

# --- testapp
step "testapp: /health is 503 during TESTAPP_START_DELAY, then 200; docker healthcheck turns healthy"
expect_status "check during the start delay" 1 docker exec "$RUN_ID-app" /testapp check http://127.0.0.1:8080/health
wait_until 15 "app to be healthy" \
  bash -c "[[ \$(docker inspect -f '{{.State.Health.Status}}' $RUN_ID-app) == healthy ]]"
expect_match "app's log" '^testapp: serving on 0.0.0.0:8080, 0.0.0.0:9090' "$(docker logs "$RUN_ID-app" 2>&1)"

step "testapp: client modes from another container (names via Docker DNS)"
expect_status "check http://app:9090/health" 0 probe "$TESTAPP" check http://app:9090/health
expect_eq "put" "$(probe "$TESTAPP" put http://app:8080/kv/greeting world)" "stored"
expect_eq "get on the other port" "$(probe "$TESTAPP" get http://app:9090/kv/greeting)" "world"
expect_status "get of a missing key" 1 probe "$TESTAPP" get http://app:8080/kv/missing
expect_eq "env" "$(probe "$TESTAPP" get http://app:8080/env/GREETING)" "hello"
expect_eq "file" "$(probe "$TESTAPP" get http://app:8080/file/data/greeting)" "world"
expect_match "GET /" '"ports":\[8080,9090\]' "$(probe "$TESTAPP" get http://app:8080/)"
expect_status "tcp to an open port" 0 probe "$TESTAPP" tcp app:9090
expect_status "tcp to a closed port" 1 probe "$TESTAPP" tcp app:9
expect_status "check of an unknown host" 1 probe "$TESTAPP" check http://no-such-host:8080/health
expect_status "TESTAPP_UNHEALTHY=1" 1 probe -e TESTAPP_UNHEALTHY=1 --entrypoint sh "$TESTAPP" \
  -c '/testapp serve & until /testapp tcp 127.0.0.1:8080; do sleep 0.1; done; /testapp check http://127.0.0.1:8080/health'

step "testapp: SIGTERM stops it at once with 0; the KV value survives on the volume"
start_ns=$(date +%s%N)
docker stop -t 10 "$RUN_ID-app" >/dev/null
stop_ms=$((($(date +%s%N) - start_ns) / 1000000))
((stop_ms < 5000)) || fail "docker stop took ${stop_ms} ms (the grace period is 10 s)"
expect_eq "exit code after SIGTERM" "$(docker inspect -f '{{.State.ExitCode}}' "$RUN_ID-app")" 0
expect_match "app's log" '^testapp: got SIGTERM' "$(docker logs "$RUN_ID-app" 2>&1)"
docker rm -v "$RUN_ID-app" >/dev/null
start app2 -v "$RUN_ID-data:/data" "$TESTAPP"
wait_until 10 "app2" probe "$TESTAPP" check http://app2:8080/health
expect_eq "value after replacing the container" "$(probe "$TESTAPP" get http://app2:8080/kv/greeting)" "world"

step "testapp: TESTAPP_EXIT_AFTER / TESTAPP_EXIT_CODE (jobs)"
job_status=0
job_log=$(docker run --rm --network none -e TESTAPP_EXIT_AFTER=300ms -e TESTAPP_EXIT_CODE=3 "$TESTAPP" 2>&1) ||
  job_status=$?
expect_eq "job exit status" "$job_status" 3
grep -q 'exiting with code 3' <<<"$job_log" || fail "job log lacks its exit line: $job_log"

# --- postgres
step "postgres: password login from another container (POSTGRES_PASSWORD_FILE, initdb.d ran)"
start pgclient --entrypoint sleep "$POSTGRES" infinity
pg() { docker exec -e PGPASSWORD="$1" "$RUN_ID-pgclient" psql -h "$2" -p "$3" -U app -d appdb -tAc "$4"; }
wait_until 60 "postgres to accept logins" pg secret pg 5432 'select 1'
expect_eq "row from initdb.d" "$(pg secret pg 5432 'select word from greetings')" "hello"
expect_status "login with a wrong password" 2 pg wrong pg 5432 'select 1'
expect_status "pg_isready in the server container" 0 docker exec "$RUN_ID-pg" pg_isready -U app

# --- haproxy (needs pg and app2 resolvable at start)
step "haproxy: TCP to postgres, HTTP to testapp"
cat >"$SCRATCH/haproxy.cfg" <<'EOF'
global
  log stdout format raw local0
defaults
  log global
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend postgres
  mode tcp
  bind :5433
  default_backend postgres
backend postgres
  mode tcp
  server pg pg:5432 check
frontend web
  mode http
  bind :8081
  default_backend web
backend web
  mode http
  server app2 app2:8080 check
EOF
create haproxy "$HAPROXY"
docker cp "$SCRATCH/haproxy.cfg" "$RUN_ID-haproxy:/usr/local/etc/haproxy/haproxy.cfg"
docker start "$RUN_ID-haproxy" >/dev/null
wait_until 20 "postgres through haproxy" pg secret haproxy 5433 'select 1'
expect_eq "query through haproxy" "$(pg secret haproxy 5433 'select count(*) from greetings')" "1"
expect_eq "http through haproxy" "$(probe "$TESTAPP" get http://haproxy:8081/kv/greeting)" "world"

# --- redis
step "redis: PING, SET/GET from another container"
wait_until 20 "redis" probe "$REDIS" redis-cli -h redis ping
expect_eq "ping" "$(probe "$REDIS" redis-cli -h redis ping)" "PONG"
probe "$REDIS" redis-cli -h redis set greeting hello >/dev/null
expect_eq "get" "$(probe "$REDIS" redis-cli -h redis get greeting)" "hello"

step "stopping the servers: clean exits"
docker stop -t 10 "$RUN_ID-pg" "$RUN_ID-redis" "$RUN_ID-haproxy" >/dev/null
for name in pg redis haproxy; do
  code=$(docker inspect -f '{{.State.ExitCode}}' "$RUN_ID-$name")
  expect_eq "$name exit code" "$code" 0
done
expect_match "postgres' last words" 'database system is shut down$' "$(docker logs "$RUN_ID-pg" 2>&1 | tail -n 1)"

[[ -n $ALL ]] || exit 0

# --- the extra servers: each starts, answers its own client, and stops cleanly
step "mariadb: root and user logins from another container, mysqladmin ping"
start maria -e MYSQL_ROOT_PASSWORD=rootpw -e MYSQL_DATABASE=shop -e MYSQL_USER=shopper -e MYSQL_PASSWORD="it's" \
  swarmctl-test/mariadb:10.11
start mariaclient --entrypoint sleep swarmctl-test/mariadb:10.11 infinity
maria() { docker exec "$RUN_ID-mariaclient" mariadb -h maria -u "$1" -p"$2" -N -e "$3"; }
wait_until 90 "mariadb to accept logins" maria root rootpw 'select 1'
expect_eq "user's grants" "$(maria shopper "it's" 'create table shop.t (i int); select count(*) from shop.t')" "0"
expect_status "wrong password" 1 maria shopper wrong 'select 1'
expect_status "mysqladmin ping" 0 docker exec "$RUN_ID-maria" mysqladmin -uroot -prootpw ping

step "nats: client port and monitoring endpoint"
start nats swarmctl-test/nats:2.9
wait_until 20 "nats monitoring" probe "$TESTAPP" check http://nats:8222/healthz
expect_status "nats client port" 0 probe "$TESTAPP" tcp nats:4222

step "zookeeper: zkServer.sh status says standalone; zkCli.sh creates a node"
start zk swarmctl-test/zookeeper:3.8
wait_until 60 "zookeeper" docker exec "$RUN_ID-zk" zkServer.sh status
expect_match "zkServer.sh status" '^Mode: standalone' "$(docker exec "$RUN_ID-zk" zkServer.sh status)"
docker exec "$RUN_ID-zk" zkCli.sh -server zk:2181 create /smoke hello >/dev/null 2>&1
expect_match "zkCli.sh get" '^hello$' "$(docker exec "$RUN_ID-zk" zkCli.sh -server zk:2181 get /smoke 2>/dev/null)"

step "nginx: serves its default page"
start nginx swarmctl-test/nginx:1.22
wait_until 20 "nginx" probe "$TESTAPP" check http://nginx/
expect_match "nginx's page" 'Welcome to nginx' "$(probe "$TESTAPP" get http://nginx/)"

step "prometheus: ready, and scrapes itself"
start prom swarmctl-test/prometheus:2
wait_until 30 "prometheus" probe "$TESTAPP" check http://prom:9090/-/ready
prometheus_up() { grep -qE '"value":\[[0-9.]+,"1"\]' <<<"$(probe "$TESTAPP" get 'http://prom:9090/api/v1/query?query=up')"; }
wait_until 40 "prometheus to scrape itself" prometheus_up

step "memcached: set and get over its text protocol"
start memcached swarmctl-test/memcached:1.6
wait_until 20 "memcached" probe "$TESTAPP" tcp memcached:11211
got=$(probe --entrypoint sh "$TESTAPP" -c \
  'printf "set k 0 0 5\r\nhello\r\nget k\r\nquit\r\n" | nc memcached 11211' | tr -d '\r')
grep -qx hello <<<"$got" || fail "memcached get: $got"

step "rabbitmq: rabbitmq-diagnostics ping, AMQP port, RABBITMQ_DEFAULT_USER"
start rabbit --hostname rabbit -e RABBITMQ_DEFAULT_USER=bunny -e RABBITMQ_DEFAULT_PASS=carrot swarmctl-test/rabbitmq:3.10
wait_until 90 "rabbitmq" docker exec "$RUN_ID-rabbit" rabbitmq-diagnostics -q ping
# ping answers while the node still boots; the listeners come last.
wait_until 60 "rabbitmq's AMQP port" probe "$TESTAPP" tcp rabbit:5672
expect_match "rabbitmqctl list_users" '^bunny' "$(docker exec "$RUN_ID-rabbit" rabbitmqctl -q list_users)"

step "stopping the extra servers: they exit as upstream's do"
# nats-server exits 1 on SIGTERM (0 on SIGINT), as upstream's image does.
declare -A want_code=([maria]=0 [nats]=1 [zk]=143 [nginx]=0 [prom]=0 [memcached]=0 [rabbit]=0)
extras=("${!want_code[@]}")
docker stop -t 30 "${extras[@]/#/$RUN_ID-}" >/dev/null
for name in "${!want_code[@]}"; do
  expect_eq "$name exit code" "$(docker inspect -f '{{.State.ExitCode}}' "$RUN_ID-$name")" "${want_code[$name]}"
done
