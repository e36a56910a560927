#!/bin/sh
# Install the Debian/Ubuntu packages mnmcu uses when they are missing:
# the Arm cross compiler with its C and C++ libraries and QEMU (firmware builds
# and simulation; TFLite Micro is C++), Chromium
# (the report.html test opens the page headless), and
# Python's venv module. Needs root (or sudo) only when something is missing.
set -eu

PACKAGES="gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm python3-venv gcc chromium"
missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# A python3 that already has venv (e.g. from pyenv) does not need Debian's.
if python3 -c "import venv, ensurepip" 2>/dev/null; then
    missing=$(echo "$missing" | sed 's/ python3-venv//')
fi
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "mnmcu: missing system packages:$missing; this is not a Debian/Ubuntu system, install their equivalents yourself" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
    echo "mnmcu: installing$missing with sudo (root is needed for apt-get)" >&2
else
    echo "mnmcu: missing system packages:$missing; run as root: apt-get install -y$missing" >&2
    exit 1
fi
echo "mnmcu: installing system packages:$missing" >&2
$SUDO apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
