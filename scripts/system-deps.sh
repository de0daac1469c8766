#!/usr/bin/env bash
# Debian packages the tests need: a headless browser and a CJK font for the clerk-screen tests
# (without one every Chinese character is a box in a screenshot or a PDF), iproute2 +
# nftables for the sync tests that shape a link inside network namespaces, and RabbitMQ for
# the department tests (each test session starts its own broker on loopback, by PID), nginx
# and openssl for the TLS test (it runs its own nginx in front of a node, on loopback), sudo
# for the provisioning test that runs the roles as a non-root service account.
# Installs only what is missing; needs root (or sudo) the first time.
#
# rabbitmq-server and nginx must not run as services here: the install is kept from starting it
# (policy-rc.d) and, where systemd runs, its unit and Erlang's epmd socket are disabled, so
# nothing listens on 5672 or 4369; the demo and the tests start private brokers of their own.
set -euo pipefail

packages=(chromium fonts-noto-cjk iproute2 nftables rabbitmq-server nginx-light openssl sudo)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive

policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
    # invoke-rc.d asks this before starting a service: 101 means "not now".
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    own_policy=1
fi
cleanup() { [ -n "$own_policy" ] && $SUDO rm -f "$policy"; true; }
trap cleanup EXIT

$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    $SUDO systemctl disable --now rabbitmq-server.service epmd.socket epmd.service nginx.service 2>/dev/null || true
fi
