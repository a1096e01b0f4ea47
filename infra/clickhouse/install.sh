#!/usr/bin/env bash
# Install Debian's ClickHouse server and client (release 18.16) if the server binary is missing.
# Idempotent: does nothing when clickhouse-server is already on PATH. Never starts the system service:
# qrtrace runs its own server with its own config (infra/clickhouse/start.sh).
set -euo pipefail

if command -v clickhouse-server >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        echo "install.sh: clickhouse-server is not installed and installing it needs root (apt-get)." >&2
        exit 1
    fi
else
    SUDO=()
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: clickhouse-server is not installed and this machine has no apt-get; install ClickHouse yourself." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    clickhouse-server clickhouse-client

if ! command -v clickhouse-server >/dev/null 2>&1; then
    echo "install.sh: apt-get finished but clickhouse-server is still not on PATH." >&2
    exit 1
fi
