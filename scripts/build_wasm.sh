#!/usr/bin/env bash
# Builds the WebAssembly module with Debian's emscripten, in one of its two
# flavours (cmake/wasm.cmake):
# - threaded: build-wasm/src/wasm/osprey.js, .wasm and .worker.js, and the
#   unit tests that apply to it (tests/wasm/);
# - --single-thread: build-wasm-single/src/wasm/osprey-single.js and .wasm,
#   for pages that are not cross-origin isolated.
# PCRE2 (the pre-tokenizers' regular expressions) is built for wasm from
# Debian's own source package, once per build folder.
# Usage: bash scripts/build_wasm.sh [BUILD_DIR] [--single-thread]     (setup.sh runs both)
set -euo pipefail
cd "$(dirname "$0")/.."
single=0
dir=""
for a in "$@"; do
  case "$a" in
    --single-thread) single=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "build_wasm: unknown option $a (--single-thread)" >&2; exit 2 ;;
    *) [ -z "$dir" ] || { echo "build_wasm: one build folder, not $dir and $a" >&2; exit 2; }; dir=$a ;;
  esac
done
if [ "$single" = 1 ]; then
  out=$(realpath -m "${dir:-build-wasm-single}")
  thread_flags=""
  cmake_flavour=(-DOSPREY_WASM_PTHREADS=OFF)
  targets=(osprey_wasm)
else
  out=$(realpath -m "${dir:-build-wasm}")
  thread_flags="-pthread"
  cmake_flavour=(-DOSPREY_WASM_PTHREADS=ON)
  targets=(osprey_wasm wasm_tests)
fi
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
  # No JIT (wasm cannot generate code at run time); threads (or none) like everything else in the module.
  emcmake cmake -S pcre2-src -B pcre2-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="$thread_flags" \
    -DBUILD_SHARED_LIBS=OFF -DPCRE2_SUPPORT_JIT=OFF -DPCRE2_SUPPORT_UNICODE=ON -DPCRE2_BUILD_PCRE2GREP=OFF \
    -DPCRE2_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX="$pcre2" > pcre2-configure.log
  cmake --build pcre2-build > pcre2-build.log
  cmake --install pcre2-build > /dev/null
  cd - > /dev/null
fi

emcmake cmake -S . -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOSPREY_WASM_PCRE2="$pcre2" "${cmake_flavour[@]}" \
  > "$out/configure.log" || { cat "$out/configure.log"; exit 1; }
cmake --build "$out" --target "${targets[@]}"
if [ "$single" = 1 ]; then
  echo "build_wasm: built $out/src/wasm/osprey-single.js (single-threaded)"
else
  echo "build_wasm: built $out/src/wasm/osprey.js and the unit tests in $out/tests/wasm"
fi
