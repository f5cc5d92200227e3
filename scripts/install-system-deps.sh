#!/usr/bin/env bash
# System libraries rlhp needs beyond pip: EGL / OSMesa for headless MuJoCo rendering.
# Installs them with apt when they are missing (root or sudo); does nothing when present.
set -euo pipefail
missing=()
for lib in libEGL.so.1 libGL.so.1 libOSMesa.so; do
  ldconfig -p | grep -q "$lib" || missing+=("$lib")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing system libraries for ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libegl1 libgl1 libosmesa6 >/dev/null
