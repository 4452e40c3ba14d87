#!/usr/bin/env bash
# Set up solidot-crawler in ./.venv: a Python >= 3.11 (3.13 preferred) and the
# project with its test tools; then what the tests start themselves: redis-server
# (Debian's package, when missing) and a MongoDB wire-protocol server (mongoeco, in
# its own .venv-mongoeco). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
    local candidates=()
    if command -v pyenv >/dev/null 2>&1; then
        local prefix
        for version in 3.13 3.12 3.11; do
            prefix=$(pyenv prefix "$(pyenv versions --bare 2>/dev/null | grep -E "^${version//./\\.}(\.[0-9]+)?$" | sort -V | tail -n 1)" 2>/dev/null || true)
            [ -n "$prefix" ] && candidates+=("$prefix/bin/python")
        done
    fi
    candidates+=(python3.13 python3.12 python3.11 python3)
    for python in "${candidates[@]}"; do
        if command -v "$python" >/dev/null 2>&1 &&
            "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$python"
            return
        fi
    done
    echo "solidot-crawler needs Python >= 3.11" >&2
    exit 1
}

if [ ! -x .venv/bin/python ]; then
    python=$(pick_python)
    echo "creating .venv with $("$python" --version)"
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
echo "ready: $(.venv/bin/python --version), $(.venv/bin/scrapy version)"
bash deploy/setup-redis.sh
bash deploy/setup-mongoeco.sh
