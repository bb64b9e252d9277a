#!/usr/bin/env bash
# Runs osprey and a peer engine (llama.cpp, or ik_llama.cpp for the families
# llama.cpp predates) side by side on the same GGUF files:
#  1. greedy token ids for two prompts, reporting how many agree and the
#     smallest margin between llama.cpp's two best logits;
#  2. speed: `osprey bench` against `llama-bench`, prompt processing (pp) and
#     generation (tg), same thread count and repetitions, as ratios.
#
# usage: scripts/compare_llamacpp.sh PEER_DIR MODEL.gguf [MODEL.gguf ...]
#   PEER_DIR: a llama.cpp or ik_llama.cpp checkout you have already built
#   with CMake (llama-bench and libllama.so under build/). This script builds
#   nothing of it; it only compiles tools/peer/llama_greedy.cpp against it.
# env: N_TOKENS (default 32), THREADS (default 2), OSPREY (default build/src/osprey),
#      PP (default 512), TG (default 128), REPS (default 3), ROUNDS (default 1); PP=0 or TG=0 leaves that test out;
#      PEER_ARGS: more llama-bench flags for the peer (PEER_ARGS="-rtr 1": ik_llama.cpp's run-time repacking)
#      OSPREY_ARGS: more flags for osprey's run and bench (OSPREY_ARGS="--f16-as-bf16")
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  sed -n '2,16p' "$0"
  exit 2
fi
llama="$(cd "$1" && pwd)"
shift
n_tokens=${N_TOKENS:-32}
threads=${THREADS:-2}
rounds=${ROUNDS:-1}
osprey=${OSPREY:-build/src/osprey}
[ -x "$osprey" ] || { echo "build osprey first (bash scripts/setup.sh)"; exit 1; }
[ -f "$llama/build/bin/llama-bench" ] || { echo "$llama/build/bin/llama-bench not found: build the peer first"; exit 1; }
peer_name=llama.cpp
[ -d "$llama/ggml/src/iqk" ] && peer_name=ik_llama.cpp
[ -n "${PEER_ARGS:-}" ] && peer_name="$peer_name ${PEER_ARGS}"

probe=build/peer/llama_greedy
bash scripts/build_peer_probe.sh "$llama" tools/peer/llama_greedy.cpp "$probe"

prompts=("Once upon a time" "The quick brown fox jumps over the lazy dog. 12345")
for model in "$@"; do
  echo "== $model"
  for prompt in "${prompts[@]}"; do
    out=$("$probe" "$model" "$prompt" "$n_tokens" "$threads")
    theirs=$(echo "$out" | sed -n 's/^ids: //p')
    margin=$(echo "$out" | sed -n 's/^margins: //p' | tr ' ' '\n' | sort -g | head -1)
    # shellcheck disable=SC2086  # OSPREY_ARGS is a list of flags
    ours=$("$osprey" run -m "$model" -p "$prompt" -n "$n_tokens" --temp 0 -t "$threads" --show-ids -q ${OSPREY_ARGS:-} 2>&1 >/dev/null |
      sed -n 's/^generated ids: \[\(.*\)\]/\1/p' | tr -d ',')
    read -r -a a <<<"$theirs"
    read -r -a b <<<"$ours"
    same=0
    while [ $same -lt ${#a[@]} ] && [ "${a[$same]}" == "${b[$same]:-}" ]; do same=$((same + 1)); done
    echo "greedy '$prompt': $same/${#a[@]} tokens agree (smallest $peer_name margin $margin)"
  done
  pp=${PP:-512}
  tg=${TG:-128}
  reps=${REPS:-3}
  # The host's speed drifts by tens of percent within minutes, so the two
  # programs take turns, ROUNDS times, and each round gives its own ratio;
  # the median ratio is the figure to quote.
  pp_ratios=()
  tg_ratios=()
  for round in $(seq 1 "$rounds"); do
    # Both print one result per test, prompt first; pick avg_ts from each.
    # shellcheck disable=SC2086
    ours=$("$osprey" bench -m "$model" -p "$pp" -n "$tg" -t "$threads" -r "$reps" ${OSPREY_ARGS:-} -o json |
      sed -n 's/.*"avg_ts": \([0-9.e+-]*\).*/\1/p' | xargs)
    # avg_ts found by its header, counted from the end of the line: the two
    # peers' CSVs differ in columns, and some values hold commas ("-1,0").
    # shellcheck disable=SC2086  # PEER_ARGS is a list of flags
    theirs=$("$llama/build/bin/llama-bench" -m "$model" -t "$threads" -p "$pp" -n "$tg" -r "$reps" ${PEER_ARGS:-} -o csv 2>/dev/null |
      awk -F'"?,"?' 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == "avg_ts") back = NF - i; next } { print $(NF - back) }' | xargs)
    read -r -a ours_ts <<<"$ours"
    read -r -a theirs_ts <<<"$theirs"
    # A test of 0 tokens is left out by both programs.
    tests=()
    if [ "$pp" -gt 0 ]; then tests+=("pp$pp"); fi
    if [ "$tg" -gt 0 ]; then tests+=("tg$tg"); fi
    for i in "${!tests[@]}"; do
      ratio=$(awk -v a="${ours_ts[$i]}" -v b="${theirs_ts[$i]}" 'BEGIN { print a / b }')
      if [ "${tests[$i]}" == "pp$pp" ]; then pp_ratios+=("$ratio"); else tg_ratios+=("$ratio"); fi
      printf "round %d %-6s osprey %8.2f tokens/s  %s %8.2f tokens/s  ratio %.2f\n" \
        "$round" "${tests[$i]}" "${ours_ts[$i]}" "$peer_name" "${theirs_ts[$i]}" "$ratio"
    done
  done
  median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
  if [ "$pp" -gt 0 ]; then echo "pp$pp median ratio $(median "${pp_ratios[@]}") over $rounds rounds"; fi
  if [ "$tg" -gt 0 ]; then echo "tg$tg median ratio $(median "${tg_ratios[@]}") over $rounds rounds"; fi
done
