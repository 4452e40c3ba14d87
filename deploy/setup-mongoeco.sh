#!/usr/bin/env bash
# Set up ./.venv-mongoeco: Python 3.13 with mongoeco, a MongoDB wire-protocol server
# in Python that the storage tests and benchmark run (no mongod can be installed here).
# Test-only and ≈ 110 MB (numpy, shapely, usearch), so it stays out of the project's
# .venv. Safe to run again: does nothing when mongoeco is already importable.
set -euo pipefail
cd "$(dirname "$0")/.."

MONGOECO_VERSION=4.11.0
VENV=.venv-mongoeco

source deploy/python.sh

if [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c "import bson, importlib.metadata as m, sys; sys.exit(m.version('mongoeco') != '$MONGOECO_VERSION')" 2>/dev/null; then
    echo "ready: $VENV has mongoeco $MONGOECO_VERSION"
    exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
    python=$(pick_python 3.13)
    echo "creating $VENV with $("$python" --version)"
    "$python" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# The [wire] extra brings pymongo's bson: without it the server cannot encode a single reply
# (every connection is closed after the handshake, and clients see ServerSelectionTimeoutError).
"$VENV/bin/python" -m pip install --quiet "mongoeco[wire]==$MONGOECO_VERSION"
echo "ready: $VENV has mongoeco $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mongoeco"))')"
