#!/usr/bin/env bash
# Runs one fuzz target under AFL++ for SECONDS (default 600):
#
#   scripts/fuzz.sh TARGET [SECONDS] [--merge]
#
# TARGET is one of fuzz::TARGETS (cwmp, authorization, bulk_json, bulk_csv, ipdr_stream,
# ipdr_doc, datamodel, udp_cr, task_args). The seed corpus is fuzz/corpus/TARGET; AFL's
# output (queue, crashes, fuzzer_stats) goes to target/fuzz/TARGET. With --merge, the queue
# is minimised with afl-cmin and replaces fuzz/corpus/TARGET (cargo test replays it).
# A crash found goes into fuzz/regressions/TARGET once it is fixed.
#
# Needs cargo-afl (installed here on first use: cargo install cargo-afl --version 0.18.2).
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:?usage: scripts/fuzz.sh TARGET [SECONDS] [--merge]}
secs=${2:-600}
merge=${3:-}
[ -d "fuzz/corpus/$target" ] || { echo "no corpus fuzz/corpus/$target" >&2; exit 2; }

command -v cargo-afl >/dev/null 2>&1 || cargo install cargo-afl --version 0.18.2 --locked

# Optimised, but with overflow checks and debug assertions: an overflow on outside input
# is a defect the fuzzer must see.
export CARGO_TARGET_DIR=target/afl
export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
export CARGO_PROFILE_RELEASE_LTO=false
cargo afl build --release -p keelson-fuzz --features afl --bin fuzz-target
bin=target/afl/release/fuzz-target

out=target/fuzz/$target
rm -rf "$out"
mkdir -p "$out"
dict=()
[ -f "fuzz/dict/$target.dict" ] && dict=(-x "fuzz/dict/$target.dict")

export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 RUST_BACKTRACE=0
# -m: memory limit in MB (a target whose memory grows without bound crashes); -t: ms per
# input; -V: stop after SECONDS.
cargo afl fuzz -i "fuzz/corpus/$target" -o "$out" -m 1024 -t 2000 -V "$secs" "${dict[@]}" -- "$bin" "$target" \
  > "$out/afl.log" 2>&1 || { tail -40 "$out/afl.log"; exit 1; }

stats=$out/default/fuzzer_stats
for k in run_time execs_done execs_per_sec corpus_count bitmap_cvg edges_found total_edges saved_crashes saved_hangs; do
  printf '%-14s %s\n' "$k" "$(awk -F' *: *' -v k="$k" '$1==k {print $2}' "$stats")"
done
crashes=$(find "$out/default/crashes" -type f -name 'id:*' | wc -l)
if [ "$crashes" -gt 0 ]; then
  echo "CRASHES: $crashes in $out/default/crashes (replay: $bin $target < FILE)"
fi

if [ "$merge" = "--merge" ]; then
  tmp=$(mktemp -d)
  # The map must hold every edge of the binary (total_edges in fuzzer_stats).
  map=$(awk -F" *: *" '$1=="total_edges" {print $2}' "$stats")
  AFL_MAP_SIZE=$(( (map / 65536 + 1) * 65536 )) cargo afl cmin -i "$out/default/queue" -o "$tmp/min" -m 1024 -t 2000 -- "$bin" "$target" >/dev/null
  rm -rf "fuzz/corpus/$target"
  mkdir -p "fuzz/corpus/$target"
  n=0
  for f in "$tmp/min"/*; do
    n=$((n + 1))
    cp "$f" "fuzz/corpus/$target/$(sha1sum "$f" | cut -c1-16)"
  done
  rm -rf "$tmp"
  echo "merged: fuzz/corpus/$target holds $n inputs"
fi
[ "$crashes" -eq 0 ]
