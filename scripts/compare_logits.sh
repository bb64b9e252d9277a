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
kind=llama.cpp
[ -d "$peer/ggml/src/iqk" ] && kind=ik
probe="$build/peer/llama_logits"
bash scripts/build_peer_probe.sh "$peer" tools/peer/llama_logits.cpp "$probe"
echo "== peer: $peer ($kind)"
OSPREY_PEER_LOGITS="$(pwd)/$probe" OSPREY_PEER_KIND=$kind "$build/tests/models_test" --gtest_filter='*PeerLogits*' |
  grep -E "step [0-9]+: largest|OK \]|FAILED|SKIPPED|Failure|PASSED"
