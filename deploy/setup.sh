#!/usr/bin/env bash
# Set up solidot-crawler in ./.venv: a Python >= 3.11 (3.13 preferred) and the
# project with its test tools; then what the tests start themselves: redis-server
# (Debian's package, when missing) and a MongoDB wire-protocol server (mongoeco, in
# its own .venv-mongoeco). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

source deploy/python.sh

if [ ! -x .venv/bin/python ]; then
    python=$(pick_python 3.13 3.12 3.11)
    echo "creating .venv with $("$python" --version)"
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
echo "ready: $(.venv/bin/python --version), $(.venv/bin/scrapy version)"
bash deploy/setup-redis.sh
bash deploy/setup-mongoeco.sh
