#!/usr/bin/env bash
# Stop the ClickHouse server that start.sh recorded in <state-dir>/server.pid, and only that pid.
#
#   infra/clickhouse/stop.sh <state-dir> [--kill]
#
# SIGTERM, then a bounded wait (QRTRACE_CH_STOP_TIMEOUT seconds, default 30), then SIGKILL if that pid
# is still alive. --kill sends SIGKILL at once. Data, ports and logs stay in <state-dir> for a restart.
# A missing pid file or a pid that is gone is not an error (nothing to stop).
set -euo pipefail

die() {
    echo "stop.sh: $*" >&2
    exit 1
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then die "usage: stop.sh <state-dir> [--kill]"; fi
kill_now=0
if [ $# -eq 2 ]; then
    [ "$2" = "--kill" ] || die "usage: stop.sh <state-dir> [--kill]"
    kill_now=1
fi
[ -d "$1" ] || die "no such state directory: $1"
state="$(cd "$1" && pwd)"
timeout_s="${QRTRACE_CH_STOP_TIMEOUT:-30}"
case "$timeout_s" in '' | *[!0-9]*) die "QRTRACE_CH_STOP_TIMEOUT must be a whole number of seconds." ;; esac
if [ "$timeout_s" -lt 1 ] || [ "$timeout_s" -gt 600 ]; then die "QRTRACE_CH_STOP_TIMEOUT must be between 1 and 600."; fi

pidfile="$state/server.pid"
if [ ! -f "$pidfile" ]; then
    echo "ClickHouse not running (no $pidfile)"
    exit 0
fi
pid="$(cat "$pidfile")"
case "$pid" in '' | *[!0-9]*) die "$pidfile does not hold a pid." ;; esac

# The recorded pid must still be our server (same config path); a reused pid belongs to someone else.
ours() {
    [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--config=$state/config.xml"
}

if ! ours; then
    rm -f "$pidfile"
    echo "ClickHouse not running (pid $pid is gone)"
    exit 0
fi

if [ "$kill_now" -eq 1 ]; then
    kill -KILL "$pid" 2>/dev/null || true
else
    kill -TERM "$pid" 2>/dev/null || true
fi

# Bounded wait: at most timeout_s seconds in 0.2 s steps.
steps=$((timeout_s * 5))
i=0
while ours && [ "$i" -lt "$steps" ]; do
    sleep 0.2
    i=$((i + 1))
done

if ours; then
    echo "stop.sh: pid $pid still alive after ${timeout_s}s of SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    i=0
    while ours && [ "$i" -lt 50 ]; do
        sleep 0.2
        i=$((i + 1))
    done
    ours && die "pid $pid survived SIGKILL for 10 s."
fi
rm -f "$pidfile"
echo "ClickHouse stopped (pid $pid)"
