#!/usr/bin/env bash
# The framework alone in ./.venv-sharedcrawl, for its own test suite (sharedcrawl/tests): the
# scrapy-sharedcrawl distribution with every extra and its test tools, and nothing of the Solidot
# project, so a framework test that leans on the project fails there. Safe to run again; pip's
# cache makes it quick after deploy/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

source deploy/python.sh

if [ ! -x .venv-sharedcrawl/bin/python ]; then
    python=$(pick_python 3.13 3.12 3.11)
    "$python" -m venv .venv-sharedcrawl
fi
.venv-sharedcrawl/bin/python -m pip install --quiet --upgrade pip
.venv-sharedcrawl/bin/python -m pip install --quiet -e './sharedcrawl[test,dashboard,warc,scrapyd]'
echo "ready: .venv-sharedcrawl, scrapy-sharedcrawl $(.venv-sharedcrawl/bin/python -c 'import scrapy_sharedcrawl as s; print(s.__version__)')"
