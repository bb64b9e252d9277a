#!/usr/bin/env bash
# Runs osprey perplexity and a peer's llama-perplexity on the same model,
# text and window length, and prints both final estimates and their ratio.
#
# usage: scripts/compare_perplexity.sh PEER_DIR MODEL.gguf [TEXT] [CTX] [CHUNKS]
#   PEER_DIR: a built llama.cpp or ik_llama.cpp (build/bin/llama-perplexity)
#   TEXT:     default /usr/share/common-licenses/GPL-3
#   CTX:      window length, default 512;  CHUNKS: windows to score, default all
# env: OSPREY_BUILD (default build), THREADS (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  sed -n '2,10p' "$0"
  exit 2
fi
peer="$(cd "$1" && pwd)/build/bin/llama-perplexity"
[ -x "$peer" ] || { echo "no $peer: build the peer's llama-perplexity target"; exit 1; }
model=$2
text=${3:-/usr/share/common-licenses/GPL-3}
ctx=${4:-512}
chunks=${5:-0}
threads=${THREADS:-2}
osprey="${OSPREY_BUILD:-build}/src/osprey"
peer_chunks=()
[ "$chunks" = 0 ] || peer_chunks=(--chunks "$chunks")
ours=$("$osprey" perplexity -m "$model" -f "$text" -c "$ctx" --chunks "$chunks" -t "$threads" -q 2>&1)
theirs=$("$peer" -m "$model" -f "$text" -c "$ctx" -b "$ctx" "${peer_chunks[@]}" -t "$threads" 2>&1)
a=$(echo "$ours" | grep -o "PPL = [0-9.]* +/- [0-9.]*")
b=$(echo "$theirs" | grep -o "= [0-9.]* +/- [0-9.]*" | tail -1 | sed 's/^= /PPL = /')
echo "model:  $model, text: $text, windows of $ctx"
echo "osprey: $a   ($(echo "$ours" | grep -o "[0-9.]* tokens/s"))"
echo "peer:   $b   ($(echo "$theirs" | grep -o "[0-9.]* seconds per pass" | head -1))"
awk -v a="$(echo "$a" | awk '{print $3}')" -v b="$(echo "$b" | awk '{print $3}')" \
  'BEGIN{printf "ratio:  %.6f (relative difference %.2e)\n", a/b, (a-b)/b}'
