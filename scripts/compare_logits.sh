#!/usr/bin/env bash
# Compares osprey's full logit vectors with a peer engine's on synthesized
# plain-weight models of every family the peer knows (tests/models/
# peer_logits_test.cpp): a 12-token prompt and 8 greedy steps, q8_0 and f16;
# the same top-10 ids and a largest difference under 1% of the logit range.
#
# usage: scripts/compare_logits.sh PEER_DIR
#   PEER_DIR: a llama.cpp or ik_llama.cpp checkout you have already built
#   with CMake (libllama.so under build/). This script builds nothing of it;
#   it only compiles tools/peer/llama_logits.cpp against it.
# env: OSPREY_BUILD (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  sed -n '2,12p' "$0"
  exit 2
fi
peer="$(cd "$1" && pwd)"
build=${OSPREY_BUILD:-build}
[ -x "$build/tests/models_test" ] || { echo "build osprey first (bash scripts/setup.sh)"; exit 1; }
libllama=$(find "$peer/build" -name 'libllama.so' | head -1)
libggml=$(find "$peer/build" -name 'libggml.so' | head -1)
[ -n "$libllama" ] && [ -n "$libggml" ] || { echo "no libllama.so/libggml.so under $peer/build: build the peer first"; exit 1; }
libs=(-L"$(dirname "$libllama")" -L"$(dirname "$libggml")" -lllama -lggml)
extra=()
if [ -n "$(find "$peer/build" -name 'libggml-base.so' | head -1)" ]; then
  libs+=(-L"$(dirname "$(find "$peer/build" -name 'libggml-base.so' | head -1)")" -lggml-base)
fi
# ik_llama.cpp keeps the older API (llama_free_model, positions in llama_batch_get_one).
kind=llama.cpp
if ! grep -q "llama_model_free" "$peer/include/llama.h"; then
  extra+=(-DPEER_OLD_API)
fi
[ -d "$peer/ggml/src/iqk" ] && kind=ik
mkdir -p "$build/peer"
probe="$build/peer/llama_logits"
rpath=$(dirname "$libllama"):$(dirname "$libggml")
g++ -O2 -std=c++17 "${extra[@]}" tools/peer/llama_logits.cpp -I"$peer/include" -I"$peer/ggml/include" "${libs[@]}" \
  -Wl,-rpath,"$rpath" -o "$probe"
echo "== peer: $peer ($kind)"
OSPREY_PEER_LOGITS="$(pwd)/$probe" OSPREY_PEER_KIND=$kind "$build/tests/models_test" --gtest_filter='*PeerLogits*' |
  grep -E "step [0-9]+: largest|OK \]|FAILED|SKIPPED|Failure|PASSED"
