#!/usr/bin/env bash
# Fetches the arm64 builds of the libraries osprey links (PCRE2, GoogleTest,
# and the header-only JSON, CLI11 and Boost's Asio/Beast) from Debian's archive into DIR, for the
# cross build in cmake/aarch64-linux-gnu.cmake. apt runs with a state of its
# own under DIR, so the machine's package sources and lists are not touched.
# Usage: bash scripts/arm64_sysroot.sh DIR
set -euo pipefail
dir=${1:?usage: arm64_sysroot.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# The marker names what the sysroot holds, so adding a library refetches it.
marker="$dir/.complete-2"
if [ -f "$marker" ]; then exit 0; fi

suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
state="$dir/.apt"
mkdir -p "$state/lists/partial" "$state/archives/partial" "$state/debs"
echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
  >"$state/sources.list"
apt_opts=(-o Dir::Etc::SourceList="$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o Dir::State::Lists="$state/lists" -o Dir::Cache::Archives="$state/archives"
  -o Dir::State::Status=/dev/null -o APT::Architecture=arm64 -o APT::Architectures::=arm64
  -o APT::Sandbox::User=root -qq)
apt-get "${apt_opts[@]}" update
(cd "$state/debs" && apt-get "${apt_opts[@]}" download \
  libpcre2-dev:arm64 libpcre2-8-0:arm64 libgtest-dev:arm64 libgmock-dev:arm64 nlohmann-json3-dev libcli11-dev libboost1.74-dev:arm64)
for deb in "$state/debs"/*.deb; do dpkg-deb -x "$deb" "$dir"; done
# The cross build links statically, so only the archives may be found.
find "$dir" -name '*.so' -o -name '*.so.*' | xargs -r rm -f
rm -rf "$state"
touch "$marker"
echo "arm64_sysroot: libraries in $dir"
