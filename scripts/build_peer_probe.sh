#!/usr/bin/env bash
# Compiles one of tools/peer/*.cpp against a peer engine you have already
# built (llama.cpp or ik_llama.cpp). Used by compare_llamacpp.sh and
# compare_logits.sh; it builds nothing of the peer.
#   usage: scripts/build_peer_probe.sh PEER_DIR SOURCE.cpp OUTPUT
# The libraries sit in build/bin (llama.cpp) or build/src and build/ggml/src
# (ik_llama.cpp); the older API (ik_llama.cpp: llama_free_model, positions in
# llama_batch_get_one) needs -DPEER_OLD_API.
set -euo pipefail
peer=$1 source=$2 out=$3
libs=()
rpath=""
for lib in libllama.so libggml.so libggml-base.so; do
  found=$(find "$peer/build" -name "$lib" | head -1)
  [ -n "$found" ] || continue
  name=${lib#lib}
  libs+=(-L"$(dirname "$found")" -l"${name%.so}")
  rpath="$rpath:$(dirname "$found")"
done
[[ " ${libs[*]} " == *" -lllama "* && " ${libs[*]} " == *" -lggml "* ]] ||
  { echo "no libllama.so/libggml.so under $peer/build: build the peer first" >&2; exit 1; }
api=()
grep -q "llama_model_free" "$peer/include/llama.h" || api=(-DPEER_OLD_API)
mkdir -p "$(dirname "$out")"
g++ -O2 -std=c++17 "${api[@]}" "$source" -I"$peer/include" -I"$peer/ggml/include" "${libs[@]}" \
  -Wl,-rpath,"${rpath#:}" -o "$out"
