#!/bin/sh
# Idempotent install of what campaigns at scale need on the host (docs/scale.md): Debian's
# redis-server, which the tests start on a free loopback port for the shared example database
# (`campaign --database redis://HOST:PORT/N`). The Python side (redis, dask[distributed]) comes
# with `pip install -e '.[dev]'` or the `cluster` extra. Debian/Ubuntu (apt) only.
# Never touches /etc/apt; runs `apt-get update` only if the install fails.
set -eu

if command -v redis-server >/dev/null 2>&1; then
    echo "scale-setup: redis-server present ($(redis-server --version | cut -d' ' -f3))" >&2
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "scale-setup: redis-server missing (and no apt-get to install it)" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "scale-setup: redis-server missing; need root (or passwordless sudo) to install" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "scale-setup: installing redis-server" >&2
if ! $SUDO apt-get install -y -q --no-install-recommends redis-server >&2; then
    echo "scale-setup: install failed; running apt-get update and retrying" >&2
    $SUDO apt-get update -q >&2 || true
    $SUDO apt-get install -y -q --no-install-recommends redis-server >&2
fi
command -v redis-server >/dev/null 2>&1 || {
    echo "scale-setup: redis-server still missing after install" >&2
    exit 1
}
echo "scale-setup: done" >&2
