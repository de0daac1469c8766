#!/usr/bin/env bash
# Debian packages the tests need: a headless browser and a CJK font for the clerk-screen tests
# (without one every Chinese character is a box in a screenshot or a PDF), and
# iproute2 + nftables for the sync tests that shape a link inside network namespaces.
# Installs only what is missing; needs root (or sudo) the first time.
set -euo pipefail

packages=(chromium fonts-noto-cjk iproute2 nftables)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
