#!/usr/bin/env bash
# Compares `osprey quantize` with a peer's llama-quantize on one synthesized
# F16 model: each single type's relative RMS error against the F16 weights
# (osprey inspect --against), the tensors whose type differs under each mix,
# and the wall time of one Q4_K_M run each (for a speed claim, time both
# with farm-bench).
#
# usage: scripts/compare_quantize.sh PEER_DIR [PRESET] [WORK_DIR]
#   PEER_DIR: a built llama.cpp or ik_llama.cpp (build/bin/llama-quantize)
#   PRESET:   an osprey synth preset (default tinyllama-1.1b)
#   WORK_DIR: where the model files go (default /tmp/osprey-compare-quantize)
# env: OSPREY_BUILD (default build), THREADS (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  sed -n '2,13p' "$0"
  exit 2
fi
peer_quantize="$(cd "$1" && pwd)/build/bin/llama-quantize"
[ -x "$peer_quantize" ] || { echo "no $peer_quantize: build the peer's llama-quantize target"; exit 1; }
preset=${2:-tinyllama-1.1b}
work=${3:-/tmp/osprey-compare-quantize}
threads=${THREADS:-2}
osprey="$(pwd)/${OSPREY_BUILD:-build}/src/osprey"
mkdir -p "$work"
f16="$work/$preset-f16.gguf"
[ -f "$f16" ] || "$osprey" synth --preset "$preset" --type f16 -o "$f16" >/dev/null
error_of() { "$osprey" inspect --no-tensors "$1" --against "$f16" | grep -o "all [0-9.]*" | cut -d' ' -f2; }
types_of() { "$osprey" inspect "$1" | grep -E "^ *(blk|output|token_embd)\." | awk '{print $1, $2}'; }

echo "== $preset: relative RMS error of every matrix against F16 (--pure: one type throughout)"
printf "%-8s %10s %10s %8s\n" type peer osprey ratio
for t in Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q4_K_S Q5_K_S Q6_K; do
  "$peer_quantize" --pure "$f16" "$work/peer-$t.gguf" "$t" "$threads" >/dev/null 2>&1
  "$osprey" quantize -q --pure "$f16" "$work/osprey-$t.gguf" "$t" -t "$threads" >/dev/null
  a=$(error_of "$work/peer-$t.gguf")
  b=$(error_of "$work/osprey-$t.gguf")
  printf "%-8s %10s %10s %8s\n" "$t" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", b/a}')"
  rm -f "$work/peer-$t.gguf" "$work/osprey-$t.gguf"
done

echo "== mixes: tensors whose type differs (name peer osprey)"
for t in Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K; do
  s=$(date +%s.%N)
  "$peer_quantize" "$f16" "$work/peer-$t.gguf" "$t" "$threads" >/dev/null 2>&1
  m=$(date +%s.%N)
  "$osprey" quantize -q "$f16" "$work/osprey-$t.gguf" "$t" -t "$threads" >/dev/null
  e=$(date +%s.%N)
  diffs=$(paste -d' ' <(types_of "$work/peer-$t.gguf") <(types_of "$work/osprey-$t.gguf") | awk '$2 != $4 {print "   ", $1, $2, $4}')
  printf "%-7s %3d differ; seconds: peer %.1f, osprey %.1f\n" "$t" "$(printf "%s" "$diffs" | grep -c . || true)" \
    "$(awk -v a="$s" -v b="$m" 'BEGIN{print b-a}')" "$(awk -v a="$m" -v b="$e" 'BEGIN{print b-a}')"
  [ -z "$diffs" ] || echo "$diffs" | head -20
  rm -f "$work/peer-$t.gguf" "$work/osprey-$t.gguf"
done
