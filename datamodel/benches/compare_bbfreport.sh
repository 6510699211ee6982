#!/usr/bin/env bash
# Side-by-side load time of this crate and the Broadband Forum's report tool (bbfreport, PyPI)
# on the same data model file, in one run.
#
#   datamodel/benches/compare_bbfreport.sh [FILE.xml]     (RUNS=5 by default)
#
# - datamodel: the `dmload` example (release build): reads the file, parses it, builds the
#   model with its lookup index, prints one summary line.
# - bbfreport: `report.py -C -f null FILE` (the default "expat" parser, no transform, the
#   "null" output format: parse and build the node tree, write nothing).
#   report.py is taken from $BBFREPORT, else PATH, else a venv made under
#   ${BBF_VENV:-/tmp/bbfreport-venv} with `pip install bbfreport==2.5.0`.
# - Timing: hyperfine when installed (apt-get install hyperfine), else a plain loop; both print
#   the two mean times and the ratio.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
runs="${RUNS:-5}"

file="${1:-}"
if [ -z "$file" ]; then
  if [ -n "${KEELSON_SHARED:-}" ]; then
    file="$KEELSON_SHARED/datamodels/tr-181-2-19-1-cwmp-full.xml"
  else
    d="$repo"
    while [ "$d" != "/" ]; do
      if [ -f "$d/shared/datamodels/tr-181-2-19-1-cwmp-full.xml" ]; then
        file="$d/shared/datamodels/tr-181-2-19-1-cwmp-full.xml"
        break
      fi
      d="$(dirname "$d")"
    done
  fi
fi
if [ -z "$file" ] || [ ! -f "$file" ]; then
  echo "no data model file (pass one, or set KEELSON_SHARED)" >&2
  exit 2
fi

echo "== building the datamodel example (release)"
(cd "$repo" && cargo build --release -q -p datamodel --example dmload)
target_dir="$(cd "$repo" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null \
  || echo "$repo/target")"
dmload="$target_dir/release/examples/dmload"

report="${BBFREPORT:-}"
if [ -z "$report" ]; then
  report="$(command -v report.py || true)"
fi
if [ -z "$report" ]; then
  venv="${BBF_VENV:-/tmp/bbfreport-venv}"
  if [ ! -x "$venv/bin/report.py" ]; then
    echo "== installing bbfreport 2.5.0 into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q bbfreport==2.5.0
  fi
  report="$venv/bin/report.py"
fi

echo "== file: $file ($(du -h "$file" | cut -f1))"
echo "== datamodel: $dmload $file"
"$dmload" "$file"
echo "== bbfreport: $report -C -f null $file   (version: $("$report" --version 2>&1 | tail -1))"
"$report" -C -f null "$file" >/dev/null

dm_cmd="$dmload $file"
bbf_cmd="$report -C -f null $file"

if command -v hyperfine >/dev/null 2>&1; then
  json="$(mktemp)"
  echo "== hyperfine, $runs runs each"
  hyperfine --runs "$runs" --style basic --export-json "$json" \
    -n datamodel "$dm_cmd" -n bbfreport "$bbf_cmd"
  python3 - "$json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
dm, bbf = r["datamodel"], r["bbfreport"]
print(f"datamodel: mean {dm['mean']*1e3:9.1f} ms  (min {dm['min']*1e3:.1f}, median {dm['median']*1e3:.1f})")
print(f"bbfreport: mean {bbf['mean']*1e3:9.1f} ms  (min {bbf['min']*1e3:.1f}, median {bbf['median']*1e3:.1f})")
print(f"ratio bbfreport / datamodel (mean): {bbf['mean']/dm['mean']:.0f}x")
PY
  rm -f "$json"
else
  echo "== hyperfine not installed: plain timing loop, $runs runs each"
  t() {
    local s e
    s=$(date +%s%N)
    "$@" >/dev/null
    e=$(date +%s%N)
    echo $(( (e - s) / 1000 ))
  }
  dm_us=0
  bbf_us=0
  for _ in $(seq "$runs"); do
    dm_us=$((dm_us + $(t $dm_cmd)))
    bbf_us=$((bbf_us + $(t $bbf_cmd)))
  done
  python3 - "$dm_us" "$bbf_us" "$runs" <<'PY'
import sys
dm, bbf, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print(f"datamodel: mean {dm/n/1e3:9.1f} ms")
print(f"bbfreport: mean {bbf/n/1e3:9.1f} ms")
print(f"ratio bbfreport / datamodel (mean): {bbf/dm:.0f}x")
PY
fi
