#!/usr/bin/env bash
# Start a ClickHouse server of qrtrace's own on 127.0.0.1, with all its files under <state-dir>.
#
#   infra/clickhouse/start.sh <state-dir>
#
# Writes <state-dir>/config.xml and users.xml, starts `clickhouse-server --config=...` in the
# background as the current user, and records:
#   <state-dir>/server.pid    the server's pid (stop.sh stops exactly this pid)
#   <state-dir>/native_port   native protocol port (clickhouse-driver)
#   <state-dir>/http_port     HTTP port
#   <state-dir>/url           clickhouse://127.0.0.1:<native_port>/qrtrace (for ClickHouseStore)
# then waits (at most QRTRACE_CH_START_TIMEOUT seconds, default 60) until `SELECT 1` answers.
# Data lives in <state-dir>/data, logs in <state-dir>/log. Starting again on the same state dir reuses
# its data and ports; starting a server that is already running only checks that it answers.
#
# Environment (optional): QRTRACE_PYTHON (a Python with clickhouse-driver; default: the repo's .venv),
# QRTRACE_CH_MAX_MEMORY (bytes per query, default 4 GiB), QRTRACE_CH_START_TIMEOUT (seconds, <= 600).
set -euo pipefail

die() {
    echo "start.sh: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: start.sh <state-dir>"
command -v clickhouse-server >/dev/null 2>&1 || die "clickhouse-server is not installed; run infra/clickhouse/install.sh first."

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [ -n "${QRTRACE_PYTHON:-}" ]; then
    py="$QRTRACE_PYTHON"
elif [ -x "$repo/.venv/bin/python" ]; then
    py="$repo/.venv/bin/python"
else
    py="python3"
fi
"$py" -c "import clickhouse_driver" 2>/dev/null || die "$py cannot import clickhouse_driver; set QRTRACE_PYTHON to a Python that can."

mkdir -p "$1"
state="$(cd "$1" && pwd)"
case "$state" in *[\&\<\>\"\']*) die "the state directory path must not contain & < > \" or ' (it is written into config.xml)." ;; esac
timeout_s="${QRTRACE_CH_START_TIMEOUT:-60}"
case "$timeout_s" in '' | *[!0-9]*) die "QRTRACE_CH_START_TIMEOUT must be a whole number of seconds." ;; esac
if [ "$timeout_s" -lt 1 ] || [ "$timeout_s" -gt 600 ]; then die "QRTRACE_CH_START_TIMEOUT must be between 1 and 600."; fi
max_memory="${QRTRACE_CH_MAX_MEMORY:-4294967296}"
case "$max_memory" in '' | *[!0-9]*) die "QRTRACE_CH_MAX_MEMORY must be a number of bytes." ;; esac

# Is the recorded pid our server (alive, and started with this state dir's config)?
ours() {
    local pid="$1"
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--config=$state/config.xml"
}

# Wait (bounded) until SELECT 1 answers on the native port while the pid is alive.
wait_ready() {
    "$py" - "$1" "$2" "$timeout_s" <<'PY'
import os, sys, time
from clickhouse_driver import Client

pid, port, timeout_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout_s
attempts = 0
while time.monotonic() < deadline and attempts < int(timeout_s * 10) + 10:
    attempts += 1
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(2)
    client = Client("127.0.0.1", port=port, connect_timeout=1, send_receive_timeout=5, sync_request_timeout=5)
    try:
        if client.execute("SELECT 1") == [(1,)]:
            sys.exit(0)
    except Exception:
        pass
    finally:
        client.disconnect()
    time.sleep(0.2)
sys.exit(3)
PY
}

if [ -f "$state/server.pid" ]; then
    pid="$(cat "$state/server.pid")"
    if ours "$pid"; then
        rc=0
        wait_ready "$pid" "$(cat "$state/native_port")" || rc=$?
        [ "$rc" -eq 0 ] || die "a server (pid $pid) is running on $state but does not answer SELECT 1; stop it with stop.sh --kill."
        echo "ClickHouse already running: pid $pid, native port $(cat "$state/native_port")"
        exit 0
    fi
    rm -f "$state/server.pid"  # stale: that process is gone (or is not ours)
fi

free_port() {
    "$py" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port_free() {
    "$py" -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()' "$1"
}

# Ports: reuse the recorded ones (a restart keeps its address), else pick two free loopback ports.
if [ -f "$state/native_port" ] && [ -f "$state/http_port" ]; then
    native_port="$(cat "$state/native_port")"
    http_port="$(cat "$state/http_port")"
    port_free "$native_port" || die "port $native_port (recorded in $state/native_port) is taken by another process."
    port_free "$http_port" || die "port $http_port (recorded in $state/http_port) is taken by another process."
else
    native_port="$(free_port)"
    http_port="$(free_port)"
    tries=0
    while [ "$http_port" = "$native_port" ] && [ "$tries" -lt 20 ]; do
        http_port="$(free_port)"
        tries=$((tries + 1))
    done
    [ "$http_port" != "$native_port" ] || die "could not find two free loopback ports."
fi

mkdir -p "$state/data" "$state/tmp" "$state/user_files" "$state/log" "$state/format_schemas"

cat >"$state/config.xml" <<XML
<?xml version="1.0"?>
<!-- Written by qrtrace infra/clickhouse/start.sh; rewritten on every start. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$state/log/clickhouse-server.log</log>
        <errorlog>$state/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$native_port</tcp_port>
    <http_port>$http_port</http_port>
    <path>$state/data/</path>
    <tmp_path>$state/tmp/</tmp_path>
    <user_files_path>$state/user_files/</user_files_path>
    <format_schema_path>$state/format_schemas/</format_schema_path>
    <users_config>$state/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>32</max_concurrent_queries>
    <!-- Small caches: this is one node on a small machine (the packaged config asks for 5 + 8 GiB). -->
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
    <!-- 18.16 has no max_server_memory_usage: the cap is max_memory_usage_for_all_queries in users.xml. -->
</yandex>
XML

cat >"$state/users.xml" <<XML
<?xml version="1.0"?>
<!-- Written by qrtrace infra/clickhouse/start.sh: one passwordless user, reachable from loopback only. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>$max_memory</max_memory_usage>
            <max_memory_usage_for_all_queries>$((max_memory * 2))</max_memory_usage_for_all_queries>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
XML

echo "$native_port" >"$state/native_port"
echo "$http_port" >"$state/http_port"
echo "clickhouse://127.0.0.1:$native_port/qrtrace" >"$state/url"

started=$(date +%s.%N)
# setsid: the server leaves the caller's process group (a Ctrl-C in the caller's terminal does not reach
# it); run from a non-interactive shell, setsid execs in place, so $! is the server's own pid.
cd "$state"
setsid clickhouse-server --config="$state/config.xml" </dev/null >>"$state/log/stdout.log" 2>&1 &
pid=$!
echo "$pid" >"$state/server.pid"

rc=0
wait_ready "$pid" "$native_port" || rc=$?
if [ "$rc" -ne 0 ]; then
    if [ "$rc" -eq 2 ]; then
        rm -f "$state/server.pid"
        echo "start.sh: the ClickHouse server exited during start-up; last log lines:" >&2
    else
        echo "start.sh: the ClickHouse server (pid $pid) did not answer SELECT 1 within ${timeout_s}s; stop it with stop.sh; last log lines:" >&2
    fi
    tail -n 20 "$state/log/clickhouse-server.err.log" "$state/log/stdout.log" >&2 2>/dev/null || true
    exit 1
fi
ours "$pid" || die "pid $pid answered but is not the server started with $state/config.xml; check $state/log."
elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "ClickHouse started in ${elapsed}s: pid $pid, native port $native_port, http port $http_port, state $state"
