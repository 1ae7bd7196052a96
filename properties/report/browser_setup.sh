#!/bin/sh
# Idempotent install of the headless browser the review's HTML test renders the report in
# (tests/test_review_browser.py): Debian's chromium. Debian/Ubuntu (apt) only.
# Never touches /etc/apt; runs `apt-get update` only if the install fails.
set -eu

if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
    echo "browser-setup: chromium present" >&2
    exit 0
fi

sh "$(dirname "$0")/../runs/apt_install.sh" browser-setup chromium
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || {
    echo "browser-setup: chromium still missing after install" >&2
    exit 1
}
echo "browser-setup: done" >&2
