#!/usr/bin/env bash
# Install Debian's chromium and chromedriver for the report's browser test, when missing.
# Needs apt-get and root (or passwordless sudo); exits 1 without changing anything else.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
command -v apt-get >/dev/null || { echo "no apt-get: install chromium and chromium-driver yourself"; exit 1; }
SUDO=""
if [ "$(id -u)" != 0 ]; then
  sudo -n true 2>/dev/null || { echo "not root and no passwordless sudo"; exit 1; }
  SUDO="sudo -n"
fi
$SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null \
  || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null; }
