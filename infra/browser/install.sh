#!/usr/bin/env bash
# Debian's Chromium (driven by Playwright's Python client, no browser download) and the DejaVu fonts the
# console and the PDF posters use. Idempotent; fails with a sentence when it cannot install.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "infra/browser/install.sh: ${need[*]} missing and this user cannot install Debian packages (not root, no sudo)." >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing ${need[*]} from Debian's packages ..."
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"; } >/tmp/qrtrace-browser-install.log 2>&1; then
  echo "infra/browser/install.sh: apt-get could not install ${need[*]} (log: /tmp/qrtrace-browser-install.log)." >&2
  tail -5 /tmp/qrtrace-browser-install.log >&2
  exit 1
fi
command -v chromium >/dev/null || { echo "infra/browser/install.sh: chromium is still not on PATH after installing." >&2; exit 1; }
