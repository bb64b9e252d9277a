#!/usr/bin/env bash
# Embeds the same texts with osprey embed and a peer's llama-embedding, on
# the same files, and prints per model the smallest cosine similarity and
# the largest element difference between the two engines' unit vectors.
# Without models, it synthesizes the bert presets (tiny-bert, all-minilm-l6,
# bge-small-en) and a decoder (tiny-qwen3, last-token pooling) in q8_0 and f16.
#
# usage: scripts/compare_embeddings.sh PEER_DIR [MODEL.gguf ...]
#   PEER_DIR: a built llama.cpp or ik_llama.cpp (build/bin/llama-embedding)
# env: OSPREY_BUILD (default build), THREADS (default 2), WORK (default a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  sed -n '2,10p' "$0"
  exit 2
fi
peer="$(cd "$1" && pwd)/build/bin/llama-embedding"
[ -x "$peer" ] || { echo "no $peer: build the peer's llama-embedding target"; exit 1; }
shift
osprey="${OSPREY_BUILD:-build}/src/osprey"
threads=${THREADS:-2}
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  for preset in tiny-bert all-minilm-l6 bge-small-en tiny-qwen3; do
    for type in q8_0 f16; do
      m="$work/$preset-$type.gguf"
      [ -f "$m" ] || "$osprey" synth --preset "$preset" --type "$type" -o "$m" 2>/dev/null
      models+=("$m")
    done
  done
fi
# Lowercase ASCII text, so that both engines read the same token ids and the
# figures measure the arithmetic: osprey lowercases and strips accents as
# uncased BERT does (checked against Hugging Face's BertTokenizer), while
# ik_llama.cpp 8337e4c reads an uppercase word as [UNK] and llama.cpp keeps
# accents.
texts=("the quick brown fox jumps over the lazy dog"
       "embeddings map text to vectors, and similar texts land close together."
       "def add(a, b): return a + b"
       "x"
       "a longer passage. it has sentences, and each adds tokens; some (like this one) have brackets!")
printf '%-28s %-6s %12s %12s\n' model pool min_cosine max_abs_diff
for m in "${models[@]}"; do
  arch=$("$osprey" inspect "$m" 2>/dev/null | sed -n 's/^model: .*(\(.*\))$/\1/p')
  pool=()
  [ "$arch" = bert ] || pool=(--pooling last)
  ours=$("$osprey" embed -m "$m" -t "$threads" "${texts[@]}" 2>/dev/null)
  # One prompt per peer run: a batch of several gives other vectors there.
  theirs="["
  for t in "${texts[@]}"; do
    v=$("$peer" -m "$m" -t "$threads" "${pool[@]}" --embd-normalize 2 --embd-output-format array -p "$t" 2>/dev/null)
    theirs+="${v:1:${#v}-2},"
  done
  theirs="${theirs%,}]"
  python3 - "$m" "${pool[*]:-model}" <<EOF
import json, math, sys
a = json.loads('''$ours''')
b = json.loads('''$theirs''')
if len(a) != len(b):
    print(f"{sys.argv[1]}: osprey gave {len(a)} vectors, the peer {len(b)}"); sys.exit(1)
cos = min(sum(x * y for x, y in zip(u, v)) / math.sqrt(sum(x * x for x in u) * sum(y * y for y in v)) for u, v in zip(a, b))
diff = max(abs(x - y) for u, v in zip(a, b) for x, y in zip(u, v))
name = sys.argv[1].rsplit("/", 1)[-1]
print(f"{name:<28} {sys.argv[2].split()[-1]:<6} {cos:12.6f} {diff:12.2e}")
EOF
done
