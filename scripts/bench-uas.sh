#!/usr/bin/env bash
# Call-rate ladder: `sipp -sn uac` against the example UAS of the SIP stack, one fresh UAS
# per step, 20 s per step. Prints one line per step: offered and achieved CPS, successful
# and failed calls, SIPp retransmissions and dead-call messages, UAS CPU seconds and peak
# RSS, UDP receive-buffer drops on the UAS socket.
#   scripts/bench-uas.sh 5000 10000 15000
set -euo pipefail
cd "$(dirname "$0")/.."
STEP_SECS=${STEP_SECS:-20}
PORT=${PORT:-5070}
cargo build --release -q -p callmesh-sip --example uas
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
hexport=$(printf '%04X' "$PORT")
for rate in "$@"; do
  target/release/examples/uas --listen "127.0.0.1:$PORT" > "$out/uas.log" 2>&1 &
  uas=$!
  sleep 0.5
  sipp -sn uac "127.0.0.1:$PORT" -i 127.0.0.1 -p 5080 -r "$rate" -rp 1000 -m $((rate * STEP_SECS)) -d 0 -nostdin \
    -trace_stat -stf "$out/stat.csv" -max_socket 10000 -buff_size 4194304 -timeout $((STEP_SECS * 3))s \
    > /dev/null 2> "$out/sipp.err" || true
  drops=$(awk -v p=":$hexport" 'NR>1 && substr($2, length($2)-4) == p {print $NF}' /proc/net/udp | head -1)
  read -r rss cpu < <(awk '/VmHWM/ {print $2}' "/proc/$uas/status" | tr '\n' ' '; awk '{print ($14+$15)/100}' "/proc/$uas/stat")
  kill -TERM "$uas"; wait "$uas" 2>/dev/null || true
  col() { awk -F';' -v c="$1" 'NR==1 {for (i=1;i<=NF;i++) if ($i==c) k=i} END {print $k}' "$out/stat.csv"; }
  printf 'offered=%s achieved=%.0f successful=%s failed=%s retrans=%s dead_call=%s uas_cpu_s=%s uas_peak_rss_mb=%d udp_drops=%s\n' \
    "$rate" "$(col 'CallRate(C)')" "$(col 'SuccessfulCall(C)')" "$(col 'FailedCall(C)')" "$(col 'Retransmissions(C)')" \
    "$(col 'DeadCallMsgs(C)')" "$cpu" $((rss / 1024)) "${drops:-0}"
  rm -f "$out/stat.csv"
done
