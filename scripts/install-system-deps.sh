#!/usr/bin/env bash
# System packages rlhp needs beyond pip, installed with apt only when missing (root or sudo):
#   always:  EGL / OSMesa for headless MuJoCo rendering
#   --test:  also Debian's chromium, which the labelling app's browser test drives
set -euo pipefail
packages=()
for lib in libEGL.so.1 libGL.so.1 libOSMesa.so; do
  ldconfig -p | grep -q "$lib" || packages+=(libegl1 libgl1 libosmesa6)
done
if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null; then
  packages+=(chromium)
fi
[ ${#packages[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
mapfile -t unique < <(printf '%s\n' "${packages[@]}" | sort -u)
echo "installing system packages: ${unique[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${unique[@]}" >/dev/null
