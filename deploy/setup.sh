#!/usr/bin/env bash
# Set up solidot-crawler in ./.venv (a Python >= 3.11, 3.13 preferred). Safe to run again.
#
#   bash deploy/setup.sh          # development and CI: the framework (sharedcrawl/) and the project
#                                 # editable, the project with its test tools,
#                                 # scrapyd and scrapyd-client, and what the tests start themselves:
#                                 # redis-server (Debian's package, when missing), a MongoDB
#                                 # wire-protocol server (mongoeco, in .venv-mongoeco), and the
#                                 # deploy-file checkers (systemd-analyze, docker-compose), and
#                                 # chromium with chromium-driver for the dashboard's browser test
#   bash deploy/setup.sh --node   # a crawl machine or scrapyd node: the project and scrapyd only
#
# The project is installed editable on purpose: scrapyd appends a deployed egg to the end of
# sys.path, so a regular install would shadow every egg that scrapyd-deploy uploads.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-dev}
case "$mode" in
    dev | --node) ;;
    *) echo "usage: bash deploy/setup.sh [--node]" >&2; exit 2 ;;
esac

source deploy/python.sh

if [ ! -x .venv/bin/python ]; then
    python=$(pick_python 3.13 3.12 3.11)
    echo "creating .venv with $("$python" --version)"
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# The framework first (its own distribution, sharedcrawl/, not on an index): the project's
# requirement on scrapy-sharedcrawl is then met by it.
if [ "$mode" = --node ]; then
    .venv/bin/python -m pip install --quiet -e './sharedcrawl[dashboard,warc,scrapyd]'
    .venv/bin/python -m pip install --quiet -e '.[scrapyd]'
else
    .venv/bin/python -m pip install --quiet -e './sharedcrawl[dashboard,warc,scrapyd]'
    .venv/bin/python -m pip install --quiet -e '.[test]'
fi
echo "ready: $(.venv/bin/python --version), $(.venv/bin/scrapy version), $(.venv/bin/scrapyd --version)"
[ "$mode" = --node ] && exit 0
bash deploy/setup-redis.sh
bash deploy/setup-mongoeco.sh
bash deploy/setup-deploy-checks.sh
bash deploy/setup-browser.sh
