#!/usr/bin/env bash
# The parts of ZooKeeper's zkServer.sh that containers use, for Debian's jars:
#   zkServer.sh start-foreground [CONFIG]   run the server (exec: it is PID 1)
#   zkServer.sh status [CONFIG]             print Mode: standalone|leader|follower; exit 1 if not serving
# Heap: ZK_SERVER_HEAP (MB, default 1000) plus SERVER_JVMFLAGS / JVMFLAGS.
set -euo pipefail
CLASSPATH=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar
CONFIG=${2:-${ZOO_CONF_DIR:-/conf}/zoo.cfg}

case ${1:-} in
	start-foreground)
		# shellcheck disable=SC2086 # the *JVMFLAGS are lists of words
		exec java "-Xmx${ZK_SERVER_HEAP:-1000}m" ${SERVER_JVMFLAGS:-} ${JVMFLAGS:-} \
			-Dorg.slf4j.simpleLogger.showDateTime=true -Dzookeeper.log.dir="${ZOO_LOG_DIR:-/logs}" \
			-cp "$CLASSPATH" org.apache.zookeeper.server.quorum.QuorumPeerMain "$CONFIG"
		;;
	status)
		# The client port: clientPort=, or the ";port" of this server's server.N line.
		port=$(sed -n 's/^clientPort=\([0-9]*\).*/\1/p' "$CONFIG" | head -n1)
		if [[ -z $port ]]; then
			myid=$(cat "$(sed -n 's/^dataDir=//p' "$CONFIG")/myid" 2>/dev/null || echo 1)
			port=$(sed -n "s/^server\.$myid=.*;\([^:]*:\)\{0,1\}\([0-9]*\)\$/\2/p" "$CONFIG" | head -n1)
		fi
		echo "Client port found: ${port:=2181}. Client address: localhost."
		out=$(java -cp "$CLASSPATH" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
			org.apache.zookeeper.client.FourLetterWordMain localhost "$port" srvr 2>/dev/null) || {
			echo "Error contacting service. It is probably not running."
			exit 1
		}
		grep '^Mode:' <<<"$out" || { echo "$out"; exit 1; }
		;;
	*)
		echo "usage: zkServer.sh start-foreground|status [CONFIG]" >&2
		exit 2
		;;
esac
