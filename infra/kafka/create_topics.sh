#!/usr/bin/env bash
# Create qrtrace's topics on the broker of <state-dir> if they are missing (idempotent).
# Usage: create_topics.sh <state-dir> [partitions]   partitions of checkins and visits (default
# QRTRACE_PARTITIONS or 4); checkins.dlq and cases get 1. Prints "topic<TAB>partitions" lines.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: create_topics.sh <state-dir> [partitions]" >&2; exit 2; }
[ -s "$1/bootstrap" ] || { echo "create_topics.sh: no broker started in $1" >&2; exit 1; }
exec "${QRTRACE_PYTHON:-$HERE/../../.venv/bin/python}" "$HERE/admin.py" topics \
  --bootstrap "$(cat "$1/bootstrap")" --partitions "${2:-${QRTRACE_PARTITIONS:-4}}"
