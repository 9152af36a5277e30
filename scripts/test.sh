#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests need and a fresh machine lacks:
# nats-server, SIPp (Debian package sip-tester), tcpdump and a font for the load-test
# harness's smoke run. CI runs exactly this script (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --profile ci
else
  cargo test --workspace --no-fail-fast
fi
cargo test --workspace --doc
