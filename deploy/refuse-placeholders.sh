#!/bin/sh
# Refuse to start while a value in the environment is still a `change-me-…` placeholder of the
# example env files (deploy/docker/.env.example, deploy/env/*.env.example); then run the command.
#
#   refuse-placeholders.sh [COMMAND [ARG…]]    # exit status 2 on a placeholder; no COMMAND: check only
#
# docker-compose.yml starts every service through it (Redis and MongoDB with this file mounted),
# and start-scrapyd.sh runs it before scrapyd: a deployment copied from the examples and not edited
# would run with passwords anyone can read in this repository.
set -eu
placeholders=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*change-me.*$/\1/p' | sort -u | tr '\n' ' ')
if [ -n "$placeholders" ]; then
    echo "refuse-placeholders: a change-me placeholder in ${placeholders% }: replace every value copied from the .env.example (e.g. openssl rand -hex 24)" >&2
    exit 2
fi
[ "$#" -eq 0 ] || exec "$@"
