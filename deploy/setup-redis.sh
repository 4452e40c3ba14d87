#!/usr/bin/env bash
# Make sure the redis-server binary is installed. Tests start their own private servers on
# free loopback ports and never use a system service, so when it is missing this installs
# Debian's redis-server package without starting its service. Needs root (as in CI).
# Safe to run again.
set -euo pipefail

if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "redis-server is missing: run this script as root, or apt-get install redis-server" >&2
        exit 1
    fi
    echo "installing Debian's redis-server (its service is not started)"
    # policy-rc.d answering 101 keeps the package's service from starting; don't touch an existing one
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi
version=$(redis-server --version) || {
    echo "redis-server is still not runnable; install Debian's redis-server package by hand" >&2
    exit 1
}
echo "ready: $version"
