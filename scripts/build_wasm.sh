#!/usr/bin/env bash
# Builds the WebAssembly module (build-wasm/src/wasm/osprey.js, .wasm and
# .worker.js) and the unit tests that apply to it (tests/wasm/) with Debian's
# emscripten. PCRE2 (the pre-tokenizers' regular
# expressions) is built for wasm from Debian's own source package, once.
# Usage: bash scripts/build_wasm.sh [BUILD_DIR]     (setup.sh runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build-wasm}")
# Debian's emscripten finds its JavaScript dependencies (acorn) here.
export NODE_PATH=/usr/share/nodejs
command -v emcmake >/dev/null || { echo "build_wasm: emscripten is not installed (apt-get install emscripten)" >&2; exit 1; }

deps="$out/deps"
pcre2="$deps/pcre2"
if [ ! -f "$pcre2/lib/libpcre2-8.a" ]; then
  mkdir -p "$deps/src/apt/lists/partial"
  cd "$deps/src"
  if ! ls pcre2_*.orig.tar.* >/dev/null 2>&1; then
    # A private source list, so the machine's apt configuration is untouched.
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" > apt/sources.list
    apt_opts=(-o Dir::Etc::SourceList="$PWD/apt/sources.list" -o Dir::Etc::SourceParts=- -o Dir::State::Lists="$PWD/apt/lists"
              -o Debug::NoDropPrivs=1 -o APT::Sandbox::User=root)
    apt-get -qq "${apt_opts[@]}" update
    apt-get -qq "${apt_opts[@]}" source --download-only pcre2
  fi
  rm -rf pcre2-src && mkdir pcre2-src && tar xf pcre2_*.orig.tar.* -C pcre2-src --strip-components=1
  # No JIT (wasm cannot generate code at run time); threads like everything else in the module.
  emcmake cmake -S pcre2-src -B pcre2-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="-pthread" \
    -DBUILD_SHARED_LIBS=OFF -DPCRE2_SUPPORT_JIT=OFF -DPCRE2_SUPPORT_UNICODE=ON -DPCRE2_BUILD_PCRE2GREP=OFF \
    -DPCRE2_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX="$pcre2" > pcre2-configure.log
  cmake --build pcre2-build > pcre2-build.log
  cmake --install pcre2-build > /dev/null
  cd - > /dev/null
fi

emcmake cmake -S . -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOSPREY_WASM_PCRE2="$pcre2" > "$out/configure.log" ||
  { cat "$out/configure.log"; exit 1; }
cmake --build "$out" --target osprey_wasm wasm_tests
echo "build_wasm: built $out/src/wasm/osprey.js and the unit tests in $out/tests/wasm"
