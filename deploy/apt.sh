# Sourced by the set-up scripts: apt_install PACKAGE… installs Debian's packages without starting
# any service they ship (tests start their own private servers). Needs root (as in CI).
apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing $*: run this script as root, or apt-get install $*" >&2
        return 1
    fi
    echo "installing Debian's $* (no service is started)"
    # policy-rc.d answering 101 keeps packages from starting services; don't touch an existing one
    local policy=/usr/sbin/policy-rc.d created=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created=1
    fi
    local status=0
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || status=$?
    [ -z "$created" ] || rm -f "$policy"
    return "$status"
}
