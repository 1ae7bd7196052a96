#!/bin/sh
# Idempotent install of what the conformance harness needs on the host:
# QEMU (TCG), cpio, a static-capable C toolchain, make and gcc-12 (the kernel module). Debian/Ubuntu (apt) only.
# Never touches /etc/apt; runs `apt-get update` only if the install fails.
set -eu

need=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86"
command -v cpio >/dev/null 2>&1 || need="$need cpio"
command -v gcc >/dev/null 2>&1 || need="$need gcc"
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/libc.a ] || need="$need libc6-dev"
command -v xz >/dev/null 2>&1 || need="$need xz-utils"
# the kernel-side runner module (module.py): make, and the kernels' own compiler (gcc-12)
command -v make >/dev/null 2>&1 || need="$need make"
command -v x86_64-linux-gnu-gcc-12 >/dev/null 2>&1 || need="$need gcc-12"

if [ -z "$need" ]; then
    echo "conform-setup: qemu-system-x86_64, cpio, gcc, libc6-dev present" >&2
    exit 0
fi

# shellcheck disable=SC2086
sh "$(dirname "$0")/../runs/apt_install.sh" conform-setup $need
command -v qemu-system-x86_64 >/dev/null 2>&1 || {
    echo "conform-setup: qemu-system-x86_64 still missing after install" >&2
    exit 1
}
echo "conform-setup: done" >&2
