#!/bin/sh
# apt_install.sh LABEL PACKAGE...: install Debian packages for one of the project's setup scripts
# (properties/conform/setup.sh, properties/runs/scale_setup.sh), as root or through passwordless sudo.
# Never touches /etc/apt; runs `apt-get update` only if the install fails. Messages start with
# LABEL and go to stderr.
set -eu
label=$1
shift
[ $# -gt 0 ] || exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "$label: missing: $* (and no apt-get to install them)" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "$label: missing: $*; need root (or passwordless sudo) to install" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "$label: installing $*" >&2
if ! $SUDO apt-get install -y -q --no-install-recommends "$@" >&2; then
    echo "$label: install failed; running apt-get update and retrying" >&2
    $SUDO apt-get update -q >&2 || true
    $SUDO apt-get install -y -q --no-install-recommends "$@" >&2
fi
