#!/usr/bin/env bash
# As the official zookeeper image's entrypoint: writes $ZOO_CONF_DIR/zoo.cfg from
# the ZOO_* variables unless it exists, and $ZOO_DATA_DIR/myid from ZOO_MY_ID
# (default 1) unless it exists; ZOO_SERVERS is a space-separated list of
# `server.N=host:2888:3888;2181`, ZOO_CFG_EXTRA extra `key=value` words.
set -e

if [[ ! -f "$ZOO_CONF_DIR/zoo.cfg" ]]; then
	CONFIG="$ZOO_CONF_DIR/zoo.cfg"
	mkdir -p "$ZOO_CONF_DIR"
	{
		echo "dataDir=$ZOO_DATA_DIR"
		echo "dataLogDir=$ZOO_DATA_LOG_DIR"
		echo "tickTime=$ZOO_TICK_TIME"
		echo "initLimit=$ZOO_INIT_LIMIT"
		echo "syncLimit=$ZOO_SYNC_LIMIT"
		echo "autopurge.snapRetainCount=$ZOO_AUTOPURGE_SNAPRETAINCOUNT"
		echo "autopurge.purgeInterval=$ZOO_AUTOPURGE_PURGEINTERVAL"
		echo "maxClientCnxns=$ZOO_MAX_CLIENT_CNXNS"
		echo "standaloneEnabled=$ZOO_STANDALONE_ENABLED"
		echo "admin.enableServer=$ZOO_ADMINSERVER_ENABLED"
	} >>"$CONFIG"
	if [[ -z $ZOO_SERVERS ]]; then
		ZOO_SERVERS="server.1=localhost:2888:3888;2181"
	fi
	for server in $ZOO_SERVERS; do
		echo "$server" >>"$CONFIG"
	done
	if [[ -n $ZOO_4LW_COMMANDS_WHITELIST ]]; then
		echo "4lw.commands.whitelist=$ZOO_4LW_COMMANDS_WHITELIST" >>"$CONFIG"
	fi
	for cfg_extra_entry in $ZOO_CFG_EXTRA; do
		echo "$cfg_extra_entry" >>"$CONFIG"
	done
fi

if [[ ! -f "$ZOO_DATA_DIR/myid" ]]; then
	mkdir -p "$ZOO_DATA_DIR"
	echo "${ZOO_MY_ID:-1}" >"$ZOO_DATA_DIR/myid"
fi

exec "$@"
