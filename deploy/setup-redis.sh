#!/usr/bin/env bash
# Make sure the redis-server binary is installed. Tests start their own private servers on
# free loopback ports and never use a system service, so when it is missing this installs
# Debian's redis-server package without starting its service. Needs root (as in CI).
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/apt.sh

command -v redis-server >/dev/null 2>&1 || apt_install redis-server
version=$(redis-server --version) || {
    echo "redis-server is still not runnable; install Debian's redis-server package by hand" >&2
    exit 1
}
echo "ready: $version"
