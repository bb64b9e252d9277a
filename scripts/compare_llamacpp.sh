#!/usr/bin/env bash
# Runs osprey and llama.cpp side by side on the same GGUF files:
#  1. greedy token ids for two prompts, reporting how many agree and the
#     smallest margin between llama.cpp's two best logits;
#  2. generation speed: `osprey run -n 128` against `llama-bench -n 128`,
#     both with the same thread count, reported as a ratio.
#
# usage: scripts/compare_llamacpp.sh LLAMA_CPP_DIR MODEL.gguf [MODEL.gguf ...]
#   LLAMA_CPP_DIR: a llama.cpp checkout you have already built with CMake
#   (build/bin/llama-bench and build/bin/libllama.so). This script builds
#   nothing of it; it only compiles tools/peer/llama_greedy.cpp against it.
# env: N_TOKENS (default 32), THREADS (default 2), OSPREY (default build/src/osprey)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  sed -n '2,14p' "$0"
  exit 2
fi
llama="$(cd "$1" && pwd)"
shift
n_tokens=${N_TOKENS:-32}
threads=${THREADS:-2}
osprey=${OSPREY:-build/src/osprey}
[ -x "$osprey" ] || { echo "build osprey first (bash scripts/setup.sh)"; exit 1; }
[ -f "$llama/build/bin/llama-bench" ] || { echo "$llama/build/bin/llama-bench not found: build llama.cpp first"; exit 1; }

mkdir -p build/peer
probe=build/peer/llama_greedy
g++ -O2 -std=c++17 tools/peer/llama_greedy.cpp -I"$llama/include" -I"$llama/ggml/include" \
  -L"$llama/build/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$llama/build/bin" -o "$probe"

prompts=("Once upon a time" "The quick brown fox jumps over the lazy dog. 12345")
for model in "$@"; do
  echo "== $model"
  for prompt in "${prompts[@]}"; do
    out=$("$probe" "$model" "$prompt" "$n_tokens" "$threads")
    theirs=$(echo "$out" | sed -n 's/^ids: //p')
    margin=$(echo "$out" | sed -n 's/^margins: //p' | tr ' ' '\n' | sort -g | head -1)
    ours=$("$osprey" run -m "$model" -p "$prompt" -n "$n_tokens" --temp 0 -t "$threads" --show-ids -q 2>&1 >/dev/null |
      sed -n 's/^generated ids: \[\(.*\)\]/\1/p' | tr -d ',')
    read -r -a a <<<"$theirs"
    read -r -a b <<<"$ours"
    same=0
    while [ $same -lt ${#a[@]} ] && [ "${a[$same]}" == "${b[$same]:-}" ]; do same=$((same + 1)); done
    echo "greedy '$prompt': $same/${#a[@]} tokens agree (smallest llama.cpp margin $margin)"
  done
  ours_tg=$("$osprey" run -m "$model" -p "Once upon a time" -n 128 --temp 0 --ignore-eos -t "$threads" 2>&1 >/dev/null |
    sed -n 's/.*generation: [0-9]* tokens, \([0-9.]*\) tokens\/s.*/\1/p')
  theirs_tg=$("$llama/build/bin/llama-bench" -m "$model" -t "$threads" -p 0 -n 128 -r 2 -o csv 2>/dev/null |
    tail -1 | awk -F'"?,"?' '{print $(NF-1)}')
  ratio=$(awk -v a="$ours_tg" -v b="$theirs_tg" 'BEGIN { printf "%.2f", a / b }')
  echo "generation: osprey $ours_tg tokens/s, llama.cpp $theirs_tg tokens/s, ratio $ratio"
done
