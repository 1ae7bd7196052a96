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

sh "$(dirname "$0")/apt_install.sh" scale-setup redis-server
command -v redis-server >/dev/null 2>&1 || {
    echo "scale-setup: redis-server still missing after install" >&2
    exit 1
}
echo "scale-setup: done" >&2
