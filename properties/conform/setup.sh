#!/bin/sh
# Idempotent install of what the conformance harness needs on the host:
# QEMU (TCG), cpio, and a static-capable C toolchain. Debian/Ubuntu (apt) only.
# Never touches /etc/apt; runs `apt-get update` only if the install fails.
set -eu

need=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86"
command -v cpio >/dev/null 2>&1 || need="$need cpio"
command -v gcc >/dev/null 2>&1 || need="$need gcc"
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/libc.a ] || need="$need libc6-dev"
command -v xz >/dev/null 2>&1 || need="$need xz-utils"

if [ -z "$need" ]; then
    echo "conform-setup: qemu-system-x86_64, cpio, gcc, libc6-dev present" >&2
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "conform-setup: missing:$need (and no apt-get to install them)" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "conform-setup: missing:$need; need root (or passwordless sudo) to install" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "conform-setup: installing$need" >&2
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y -q --no-install-recommends $need >&2; then
    echo "conform-setup: install failed; running apt-get update and retrying" >&2
    $SUDO apt-get update -q >&2 || true
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -q --no-install-recommends $need >&2
fi
command -v qemu-system-x86_64 >/dev/null 2>&1 || {
    echo "conform-setup: qemu-system-x86_64 still missing after install" >&2
    exit 1
}
echo "conform-setup: done" >&2
