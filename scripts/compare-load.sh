#!/usr/bin/env bash
# Side-by-side CWMP throughput of two `keelson` binaries on this machine.
#
#   scripts/compare-load.sh OLD_BIN NEW_BIN [PAIRS]
#
# Each binary serves a fresh data directory on loopback while the same load generator (NEW's
# `keelson sim load`) drives it; runs alternate old/new, new/old, ... (ABBA) so that drift in
# the machine's speed falls on both. Prints every run, the means and the paired ratios.
# Environment: DEVICES (20000), SESSIONS (60000), CONCURRENCY (64), DATA (/tmp: where the data
# directories go; /dev/shm takes the disk out).
#
# With CALLGRIND=1 each binary instead runs one small load (DEVICES 500, SESSIONS 2000,
# concurrency 8) under valgrind's callgrind, and the script prints instructions per session of
# the store writer thread, the HTTP workers and in total: a figure that does not drift with the
# machine.
set -euo pipefail
OLD=${1:?usage: compare-load.sh OLD_BIN NEW_BIN [PAIRS]}
NEW=${2:?usage: compare-load.sh OLD_BIN NEW_BIN [PAIRS]}
PAIRS=${3:-4}
DATA=${DATA:-/tmp}
work=$(mktemp -d "$DATA/compare-load.XXXXXX")
trap 'rm -rf "$work"' EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# serve NAME BIN [WRAPPER...]: starts a server, sets $pid, $port, $dir.
serve() {
  local name=$1 bin=$2
  shift 2
  dir="$work/$name-$RANDOM"
  mkdir -p "$dir"
  port=$(free_port)
  local https nbi
  https=$(free_port)
  nbi=$(free_port)
  KEELSON_CWMP__KEEP_ALIVE_AFTER_SESSION=true "$@" "$bin" serve --data-dir "$dir/data" \
    --cwmp-http "127.0.0.1:$port" --cwmp-https "127.0.0.1:$https" --nbi-listen "127.0.0.1:$nbi" \
    --log-level warn >"$dir/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 3000); do
    curl -fs "http://127.0.0.1:$nbi/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$dir/serve.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "server $name did not come up" >&2
  exit 1
}

load() { # devices sessions concurrency -> JSON on stdout
  "$NEW" sim load --acs-url "http://127.0.0.1:$port/" --devices "$1" --sessions "$2" \
    --concurrency "$3" --json 2>"$dir/load.err" | sed -n '/^{/,$p'
}

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

if [[ ${CALLGRIND:-} == 1 ]]; then
  devices=${DEVICES:-500} sessions=${SESSIONS:-2000}
  for name in old new; do
    bin=$OLD
    [[ $name == new ]] && bin=$NEW
    serve "$name" "$bin" valgrind --tool=callgrind --separate-threads=yes --instr-atstart=no \
      --callgrind-out-file="$work/$name.cg"
    callgrind_control -i on "$pid" >/dev/null 2>&1
    out=$(load "$devices" "$sessions" 8)
    callgrind_control -i off "$pid" >/dev/null 2>&1
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    ok=$(json "['sessions_ok']" <<<"$out")
    writer=0 http=0 total=0
    for f in "$work/$name.cg".*-*; do
      t=$(awk '/^totals:/ {print $2; exit}' "$f")
      total=$((total + t))
      if grep -q 'store::writer::run' "$f"; then
        writer=$((writer + t))
      elif grep -q 'actix_server::worker' "$f"; then
        http=$((http + t))
      fi
    done
    printf '%s: %s sessions; instructions per session: store writer %d, HTTP workers %d, total %d\n' \
      "$name" "$ok" $((writer / ok)) $((http / ok)) $((total / ok))
  done
  exit 0
fi

devices=${DEVICES:-20000} sessions=${SESSIONS:-60000} concurrency=${CONCURRENCY:-64}
declare -A sum=([old]=0 [new]=0)
ratios=()
for pair in $(seq 1 "$PAIRS"); do
  order="old new"
  ((pair % 2 == 0)) && order="new old"
  declare -A rate=()
  for name in $order; do
    bin=$OLD
    [[ $name == new ]] && bin=$NEW
    serve "$name" "$bin"
    out=$(load "$devices" "$sessions" "$concurrency")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    failed=$(json "['sessions_failed']" <<<"$out")
    rate[$name]=$(json "['sessions_per_sec']" <<<"$out")
    printf 'pair %d %s: %.1f sessions/s (%s failed)\n' "$pair" "$name" "${rate[$name]}" "$failed"
    sum[$name]=$(python3 -c "print(${sum[$name]} + ${rate[$name]})")
    rm -rf "$dir"
  done
  ratios+=("$(python3 -c "print(${rate[new]} / ${rate[old]})")")
done
python3 - "${sum[old]}" "${sum[new]}" "$PAIRS" "${ratios[@]}" <<'EOF'
import statistics, sys
old, new, n = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
r = [float(x) for x in sys.argv[4:]]
print(f"mean old {old / n:.1f}, new {new / n:.1f} sessions/s: new/old {new / old:.3f}; "
      f"paired ratios {', '.join(f'{x:.3f}' for x in r)} (median {statistics.median(r):.3f})")
EOF
