#!/bin/sh
# ZooKeeper's command-line client, e.g. `zkCli.sh -server localhost:2181 ls /`.
exec java -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
	-Dorg.slf4j.simpleLogger.defaultLogLevel=warn org.apache.zookeeper.ZooKeeperMain "$@"
