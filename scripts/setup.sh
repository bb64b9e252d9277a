#!/usr/bin/env bash
# Installs the Debian packages osprey needs (if missing) and builds it, Release, into build/.
# Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git
  ccache                                             # the compiler cache the later builds (sanitizers, the container image) reuse
  nlohmann-json3-dev libcli11-dev libpcre2-dev       # JSON, command line, Unicode regex (pre-tokenizers)
  libboost-dev                                       # Asio and Beast: the HTTP server
  libgtest-dev libgmock-dev libbenchmark-dev         # tests and micro-benchmarks
  clang libclang-rt-14-dev                           # sanitizer and fuzzer builds (scripts/test.sh)
  tmux                                               # drives `osprey chat` in a terminal test
  haproxy                                            # the load balancer in deploy/haproxy, run by the scale-out test
  podman runc debootstrap                            # builds and runs deploy/Containerfile (debootstrap makes the Debian base image offline)
  g++-aarch64-linux-gnu qemu-user                    # the ARM (NEON) build, its tests run under emulation
  chromium                                           # the browser that drives the chat page in its test (headless)
  emscripten                                         # the WebAssembly build (scripts/build_wasm.sh)
  libvulkan-dev glslc mesa-vulkan-drivers            # the Vulkan back end: headers and loader, the shader compiler, lavapipe (a CPU Vulkan device) for its tests
)
# Node runs the reference renderers the tests compare against; many machines
# already have a newer one than Debian's, so only install it when absent.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The reference implementations the tests run: @huggingface/jinja (chat
# templates) and the official openai client (server). Pinned by package-lock.json.
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error)

# The arm64 builds of the libraries the cross build links (scripts/test.sh).
bash scripts/arm64_sysroot.sh build-arm64-sysroot

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DOSPREY_BUILD_TESTS=ON -DOSPREY_BUILD_BENCH=ON
cmake --build build
echo "setup: built build/src/osprey ($SECONDS s)"
bash scripts/build_wasm.sh build-wasm
echo "setup: built build-wasm/src/wasm/osprey.js ($SECONDS s)"
bash scripts/build_wasm.sh build-wasm-single --single-thread
echo "setup: built build-wasm-single/src/wasm/osprey-single.js ($SECONDS s)"
