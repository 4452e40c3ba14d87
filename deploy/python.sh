# Sourced by the set-up scripts: pick_python VERSION… prints the first Python found whose
# major.minor is one of VERSIONs (in that order of preference): pyenv's first, then PATH's.
pick_python() {
    local candidates=() version prefix python
    if command -v pyenv >/dev/null 2>&1; then
        for version in "$@"; do
            prefix=$(pyenv prefix "$(pyenv versions --bare 2>/dev/null | grep -E "^${version//./\\.}(\.[0-9]+)?$" | sort -V | tail -n 1)" 2>/dev/null || true)
            [ -n "$prefix" ] && candidates+=("$prefix/bin/python")
        done
    fi
    for version in "$@"; do
        candidates+=("python$version")
    done
    candidates+=(python3)
    for python in "${candidates[@]}"; do
        if command -v "$python" >/dev/null 2>&1 &&
            "$python" -c 'import sys; sys.exit(f"{sys.version_info[0]}.{sys.version_info[1]}" not in sys.argv[1:])' "$@" 2>/dev/null; then
            echo "$python"
            return
        fi
    done
    echo "no Python $* found (pyenv or PATH)" >&2
    return 1
}
