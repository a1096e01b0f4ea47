#!/usr/bin/env bash
# Stop the broker that start.sh recorded in <state-dir>/broker.pid, and nothing else.
# Usage: stop.sh <state-dir> [--kill]   SIGTERM, up to KAFKA_STOP_TIMEOUT (default 30) s, then SIGKILL;
# --kill sends SIGKILL at once (fault tests). A missing or stale pid file is not an error.
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] && [ "${2:---kill}" = --kill ] || { echo "usage: stop.sh <state-dir> [--kill]" >&2; exit 2; }
[ -d "$1" ] || { echo "stop.sh: no state dir $1" >&2; exit 0; }
S="$(cd "$1" && pwd)"; PIDF="$S/broker.pid"
[ -f "$PIDF" ] || { echo "stop.sh: no broker recorded in $S" >&2; exit 0; }
PID="$(cat "$PIDF")"
# Alive and ours: the pid's command line names this state dir's properties file (guards pid reuse).
ours() { tr '\0' '\n' 2>/dev/null <"/proc/$PID/cmdline" | grep -qxF "$S/server.properties"; }
# Fully exited (files and locks released): no /proc entry, or a zombie.
exited() { case "$(sed 's/.*) //' 2>/dev/null <"/proc/$PID/stat")" in "" | Z*) true ;; *) false ;; esac; }
gone() { for _ in $(seq "$1"); do ours || break; sleep 0.1; done
  for _ in $(seq 50); do exited && break; sleep 0.1; done; ! ours; }
if ours; then
  if [ "${2:-}" = --kill ]; then
    kill -KILL "$PID" 2>/dev/null || true
  else
    kill -TERM "$PID" 2>/dev/null || true
    gone "$((${KAFKA_STOP_TIMEOUT:-30} * 10))" || { echo "stop.sh: $PID ignored SIGTERM; SIGKILL" >&2; kill -KILL "$PID" 2>/dev/null || true; }
  fi
  gone 100 || { echo "stop.sh: broker $PID still alive after SIGKILL" >&2; exit 1; }
fi
rm -f "$PIDF"
