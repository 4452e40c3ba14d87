#!/usr/bin/env bash
# Start a scrapyd node of solidot-crawler in the foreground (systemd, a container, or by hand):
#
#   SCRAPYD_USERNAME=ops SCRAPYD_PASSWORD=… deploy/scrapyd/start-scrapyd.sh [DIRECTORY]
#
# DIRECTORY (default: $SCRAPYD_HOME, else the current one) holds the node's state: eggs, logs,
# the job queue. Its scrapyd.conf is refreshed from deploy/scrapyd/scrapyd.conf. Refuses to start
# without credentials: scrapyd 1.6 would silently serve its API (uploads, jobs) to anyone; and
# while a value in its environment is still a change-me placeholder of the env examples.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
home=${1:-${SCRAPYD_HOME:-$PWD}}

if [ -z "${SCRAPYD_USERNAME:-}" ] || [ -z "${SCRAPYD_PASSWORD:-}" ]; then
    echo "start-scrapyd: SCRAPYD_USERNAME and SCRAPYD_PASSWORD must be set: scrapyd runs without authentication otherwise" >&2
    exit 2
fi
case "$SCRAPYD_USERNAME" in *:*)
    echo "start-scrapyd: SCRAPYD_USERNAME must not contain ':'" >&2
    exit 2 ;;
esac

# a node whose env file still holds the examples' change-me values would run with published passwords
sh "$here/../refuse-placeholders.sh"

# scrapyd is installed with the project: its .venv here, else (a container, a pip install) PATH.
scrapyd=${SCRAPYD_BIN:-$here/../../.venv/bin/scrapyd}
[ -x "$scrapyd" ] || scrapyd=$(command -v scrapyd) || {
    echo "start-scrapyd: scrapyd is not installed: pip install 'solidot-crawler[scrapyd]'" >&2
    exit 2
}

mkdir -p "$home"
install -m 0644 "$here/scrapyd.conf" "$home/scrapyd.conf"
cd "$home"
exec "$scrapyd" --logfile=- --pidfile=
