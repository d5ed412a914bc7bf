#!/usr/bin/env bash
# Unpacks Debian's arm64 builds of tilekit's dependencies into a directory that
# cmake/aarch64-linux-gnu.toolchain.cmake searches, without touching the system:
# apt runs with its own package lists, cache and an empty dpkg status, so nothing
# is installed and no foreign architecture is added to dpkg.
#
#   scripts/arm64-sysroot.sh [DIR]
# DIR defaults to $TILEKIT_ARM64_SYSROOT, else .cache/arm64-sysroot in the repo:
# the same places the toolchain file looks.
#
# libc and libstdc++ come from the cross toolchain (/usr/aarch64-linux-gnu,
# package g++-aarch64-linux-gnu), so only tilekit's own dependencies are needed:
# Highway and cpuinfo (headers + shared libraries) and GoogleTest (headers +
# static libraries, all in libgtest-dev). The mirror is whatever the host's apt
# sources name; it must carry arm64 (deb.debian.org does).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-${TILEKIT_ARM64_SYSROOT:-$repo/.cache/arm64-sysroot}}
packages=(libhwy-dev libhwy1 libcpuinfo-dev libcpuinfo0 libgtest-dev)

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
stamp=$dir/.tilekit-sysroot-done
# The stamp names the packages, so adding one to the list redoes the download.
if [[ -f $stamp ]] && [[ $(head -n1 "$stamp") == "packages: ${packages[*]}" ]]; then
  echo "arm64 sysroot: up to date in $dir"
  exit 0
fi

apt_dir=$dir/.apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
rm -f "$apt_dir"/debs/*.deb
o=(
  -qq
  -oAPT::Architecture=arm64 -oAPT::Architectures=arm64
  -oDir::State::Lists="$apt_dir/lists"
  -oDir::State::status=/dev/null  # ignore what the host has installed
  -oDir::Cache="$apt_dir/cache"
  -oDebug::NoLocking=1            # our own lists: no need for the system's locks
)
# As root apt downloads as the _apt user, who cannot write to a root-owned
# checkout; the files are only unpacked, never installed, so keep root.
if [[ $(id -u) == 0 ]]; then o+=(-oAPT::Sandbox::User=root); fi

echo "arm64 sysroot: fetching arm64 package lists"
apt-get "${o[@]}" update
echo "arm64 sysroot: downloading ${packages[*]}"
(cd "$apt_dir/debs" && apt-get "${o[@]}" download "${packages[@]}")

versions=()
for deb in "$apt_dir"/debs/*.deb; do
  dpkg-deb -x "$deb" "$dir"
  versions+=("$(basename "$deb")")
done
if (( ${#versions[@]} != ${#packages[@]} )); then
  echo "arm64 sysroot: expected ${#packages[@]} packages, got ${#versions[@]}" >&2
  exit 1
fi
# The lists (~20 MB) only served this download; the .debs stay as a record.
rm -rf "$apt_dir/lists" "$apt_dir/cache"
{ echo "packages: ${packages[*]}"; printf '%s\n' "${versions[@]}"; } > "$stamp"
echo "arm64 sysroot: ready in $dir"
