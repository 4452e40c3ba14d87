#!/usr/bin/env bash
# Make sure the browser the dashboard's tests drive is installed: Debian's chromium,
# chromium-driver and a CJK font (tests/watching/test_dashboard_browser.py runs it headless through Selenium). Installs
# Debian's packages when missing, which needs root (as in CI); nothing downloads a browser build.
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/apt.sh

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
# a CJK font, so that the stories' Chinese titles read in the tests' screenshots
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
browser=$(chromium --version 2>/dev/null) && driver=$(chromedriver --version 2>/dev/null) || {
    echo "chromium or chromedriver is still not runnable; install Debian's chromium and chromium-driver by hand" >&2
    exit 1
}
echo "ready: $browser, ${driver%% (*}"
