#!/usr/bin/env bash
# Installs the system packages asyndgan needs on Debian bookworm, idempotently and only when missing:
#  - Mesa >= 25 lavapipe (Vulkan on the CPU) from bookworm-backports, so Dawn finds an adapter
#    without a GPU (bookworm's own Mesa 22.3 is refused by Dawn);
#  - mricron-data, the Colin27 MRI templates used as real data.
# Safe to run many times; does nothing when everything is present. Set ASYNDGAN_SKIP_SYSTEM_SETUP=1
# to skip it entirely (e.g. on a machine with a real GPU driver).
set -euo pipefail

if [ "${ASYNDGAN_SKIP_SYSTEM_SETUP:-0}" = "1" ]; then exit 0; fi
if [ "$(uname -s)" != "Linux" ] || [ ! -f /etc/debian_version ]; then
  echo "asyndgan setup: not Debian; install a Vulkan driver (or use a GPU) yourself." >&2
  exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "asyndgan setup: need root (or sudo) to install system packages" >&2; exit 1; fi
fi

lavapipe_ok() {
  # Mesa's lavapipe ICD present, and from Mesa >= 23 (Dawn refuses 22.x).
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] || return 1
  dpkg --compare-versions "$v" ge 23 || return 1
  dpkg-query -W -f='${Status}' libvulkan1 2>/dev/null | grep -q "install ok installed"
}
mricron_ok() { [ -f /usr/share/mricron/templates/ch2.nii.gz ]; }

need_update=0
if ! lavapipe_ok; then
  . /etc/os-release
  codename="${VERSION_CODENAME:-bookworm}"
  if ! grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # The mirror the machine already uses (deb822 "URIs:" or one-line "deb" entries, not comments).
    mirror=$( { grep -rhsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ || true; } \
      | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ')
    mirror="${mirror:-http://deb.debian.org/debian}"
    echo "asyndgan setup: adding ${codename}-backports from ${mirror}"
    $SUDO tee /etc/apt/sources.list.d/asyndgan-backports.sources >/dev/null <<SRC
Types: deb
URIs: ${mirror}
Suites: ${codename}-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  need_update=1
fi
if ! mricron_ok; then need_update=1; fi

if [ "$need_update" = "1" ]; then
  $SUDO apt-get update -qq
  if ! lavapipe_ok; then
    echo "asyndgan setup: installing Mesa lavapipe (Vulkan on CPU) from backports"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t "$(. /etc/os-release; echo ${VERSION_CODENAME:-bookworm})-backports" \
      mesa-vulkan-drivers libvulkan1 >/dev/null
  fi
  if ! mricron_ok; then
    echo "asyndgan setup: installing mricron-data (Colin27 MRI templates)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mricron-data >/dev/null
  fi
fi
if lavapipe_ok; then echo "asyndgan setup: Vulkan driver OK (mesa $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers))";
else echo "asyndgan setup: WARNING: Mesa lavapipe >= 23 is not installed" >&2; fi
if mricron_ok; then echo "asyndgan setup: mricron-data OK"; fi
