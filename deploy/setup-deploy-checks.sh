#!/usr/bin/env bash
# Make sure the tools that check the deploy files (tests/deploy/test_deploy_files.py) are installed:
# systemd-analyze (verifies the units in deploy/systemd; needs no running systemd) and Debian's
# docker-compose (validates deploy/docker/docker-compose.yml with `config -q`; needs no docker
# daemon). Installs Debian's packages when missing, which needs root (as in CI); no service is
# started. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/apt.sh

missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
systemd=$(systemd-analyze --version | head -n 1) && compose=$(docker-compose version --short) || {
    echo "systemd-analyze or docker-compose is still not runnable; install Debian's systemd and docker-compose packages by hand" >&2
    exit 1
}
echo "ready: $systemd, docker-compose $compose"
