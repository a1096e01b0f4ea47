#!/usr/bin/env bash
# Start a single-node KRaft Kafka broker on 127.0.0.1 whose state lives in <state-dir>.
# Usage: start.sh <state-dir>   Prints the bootstrap address (also in <state-dir>/bootstrap).
# A second start on the same dir reuses its ports and data. Env: QRTRACE_PYTHON (python with
# confluent-kafka; default <repo>/.venv/bin/python), KAFKA_HEAP_OPTS, KAFKA_JVM_OPTS,
# KAFKA_START_TIMEOUT (seconds, default 60), JAVA_HOME (Java 17+), QRTRACE_CACHE (see fetch.sh).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ $# -eq 1 ] || { echo "usage: start.sh <state-dir>" >&2; exit 2; }
mkdir -p "$1" && S="$(cd "$1" && pwd)"
PY="${QRTRACE_PYTHON:-$HERE/../../.venv/bin/python}"
PROPS="$S/server.properties" PIDF="$S/broker.pid"
die() { echo "start.sh: $*" >&2; exit 1; }
# Alive and ours: the pid's command line names this state dir's properties file.
ours() { tr '\0' '\n' 2>/dev/null <"/proc/$1/cmdline" | grep -qxF "$PROPS"; }

if [ -f "$PIDF" ] && ours "$(cat "$PIDF")"; then cat "$S/bootstrap"; exit 0; fi
rm -f "$PIDF"
LIBS="$("$HERE/fetch.sh")"
# Ports: those saved in an earlier server.properties (clients reconnect after a restart), else two free ones.
if [ -f "$PROPS" ]; then
  P="$(sed -n 's|^advertised.listeners=PLAINTEXT://127.0.0.1:||p' "$PROPS")"
  C="$(sed -n 's|^controller.quorum.bootstrap.servers=127.0.0.1:||p' "$PROPS")"
else
  read -r P C < <("$PY" -c 'import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))') || die "could not pick free ports with $PY"
fi
[ -n "$P" ] && [ -n "$C" ] || die "no ports in $PROPS"
cat >"$PROPS" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$C
listeners=PLAINTEXT://127.0.0.1:$P,CONTROLLER://127.0.0.1:$C
advertised.listeners=PLAINTEXT://127.0.0.1:$P
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$S/data
num.partitions=4
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# After a SIGKILL the controller refuses the restarted broker until the old session expires (default 9 s).
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=1000
# Light on 2 cores.
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
log.segment.bytes=134217728
PROPS
cat >"$S/log4j2.properties" <<LOG
status = warn
shutdownHook = disable
appender.f.type = RollingFile
appender.f.name = f
appender.f.fileName = $S/broker.log
appender.f.filePattern = $S/broker.log.%i
appender.f.layout.type = PatternLayout
appender.f.layout.pattern = [%d] %p %m (%c)%n
appender.f.policy.type = SizeBasedTriggeringPolicy
appender.f.policy.size = 50MB
appender.f.strategy.type = DefaultRolloverStrategy
appender.f.strategy.max = 2
rootLogger.level = INFO
rootLogger.appenderRef.f.ref = f
LOG
JAVA=("${JAVA_HOME:+$JAVA_HOME/bin/}java" -cp "$LIBS/*" "-Dlog4j2.configurationFile=$S/log4j2.properties")
storage() { "${JAVA[0]}" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "${JAVA[@]:1}" kafka.tools.StorageTool "$@"; }
if [ ! -f "$S/data/meta.properties" ]; then  # first start only: a restart keeps the data
  ID="$(storage random-uuid)"
  storage format --standalone -t "$ID" -c "$PROPS" >"$S/format.log" 2>&1 ||
    die "storage format failed: $(tail -n 3 "$S/format.log")"
fi
SEEN="$(wc -l 2>/dev/null <"$S/broker.log" || echo 0)"  # log lines of earlier runs
# shellcheck disable=SC2086,SC2016  # *_OPTS are word lists; $$ is for the inner sh
setsid nohup sh -c 'echo $$ >"$0"; exec "$@"' "$PIDF" "${JAVA[0]}" ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} \
  ${KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true} \
  "${JAVA[@]:1}" kafka.Kafka "$PROPS" >>"$S/broker.out" 2>&1 </dev/null &
for _ in $(seq 50); do [ -s "$PIDF" ] && break; sleep 0.1; done
[ -s "$PIDF" ] || die "broker did not record its pid in $PIDF"
echo "127.0.0.1:$P" >"$S/bootstrap"
"$PY" "$HERE/admin.py" wait --bootstrap "127.0.0.1:$P" --pid "$(cat "$PIDF")" \
  --timeout "${KAFKA_START_TIMEOUT:-60}" || { "$HERE/stop.sh" "$S" --kill
  die "broker not ready ($(tail -n "+$((SEEN + 1))" "$S/broker.log" | grep '^Caused by' | tail -n 1)); see $S/broker.log"; }
echo "127.0.0.1:$P"
