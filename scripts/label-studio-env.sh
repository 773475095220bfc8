#!/usr/bin/env bash
# Create a separate virtual environment with the Label Studio server for the integration test
# (tests/labelling/test_label_studio_server.py). label-studio pins its own dependencies, so it
# never goes into the project venv, and constraints.txt is not passed to it. It does not need
# torch; the check at the end fails if one was pulled in anyway.
#
# Usage: scripts/label-studio-env.sh [VENV_DIR]   (default .venv-label-studio, git-ignored)
# Env:   PYTHON (default python3), LABEL_STUDIO_VERSION (default 1.23.*)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_DIR="${1:-.venv-label-studio}"
PYTHON="${PYTHON:-python3}"
VERSION="${LABEL_STUDIO_VERSION:-1.23.*}"
if [ ! -x "$VENV_DIR/bin/label-studio" ]; then
  "$PYTHON" -m venv "$VENV_DIR"
  "$VENV_DIR/bin/python" -m pip install -q --upgrade pip
  "$VENV_DIR/bin/python" -m pip install -q "label-studio==$VERSION"
  if "$VENV_DIR/bin/python" -c "import torch" 2>/dev/null; then
    echo "error: $VENV_DIR: label-studio pulled in torch; remove it" >&2
    exit 1
  fi
fi
# A migrated template database: each test run copies it instead of migrating (minutes).
TEMPLATE="$VENV_DIR/template-data"
if [ ! -f "$TEMPLATE/label_studio.sqlite3" ]; then
  mkdir -p "$TEMPLATE.tmp"
  LATEST_VERSION_CHECK=false LABEL_STUDIO_BASE_DATA_DIR="$PWD/$TEMPLATE.tmp" \
    "$VENV_DIR/bin/label-studio" version --data-dir "$PWD/$TEMPLATE.tmp" >/dev/null
  rm -rf "$TEMPLATE"
  mv "$TEMPLATE.tmp" "$TEMPLATE"
fi
echo "label-studio $("$VENV_DIR/bin/python" -c 'import importlib.metadata as m; print(m.version("label-studio"))') ready in $VENV_DIR"
