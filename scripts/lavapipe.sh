#!/usr/bin/env bash
# A software WebGPU adapter for Dawn on a CPU-only Debian 12 (bookworm) machine: Mesa 25's lavapipe
# (Vulkan on the CPU) from bookworm-backports, unpacked under a cache folder with a private apt
# configuration. Nothing is installed or configured system-wide; the download (about 12 MB) happens once.
# Debian 12's own Mesa 22.3 lavapipe is too old for Dawn ("Vulkan shaderUniform*ArrayDynamicIndexing
# required").
#
# Usage:  eval "$(bash scripts/lavapipe.sh)"     prints the exports LD_LIBRARY_PATH and VK_DRIVER_FILES
# The cache folder is $ALEXNET_LAVAPIPE_DIR, default .cache/lavapipe in the repository.
# It is for testing the webgpu path (ALEXNET_TEST_BACKEND=webgpu); training on it is slow: `auto` never
# picks a software adapter, and webasm is the fast CPU backend.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${ALEXNET_LAVAPIPE_DIR:-$PWD/.cache/lavapipe}
L=$R/root/usr/lib/x86_64-linux-gnu
if [ ! -f "$L/libvulkan_lvp.so" ] || [ ! -f "$L/libvulkan.so.1" ]; then
  command -v apt-get >/dev/null && command -v dpkg >/dev/null || { echo "lavapipe.sh: needs apt-get and dpkg (Debian 12)" >&2; exit 2; }
  rm -rf "$R"
  mkdir -p "$R/apt/parts" "$R/apt/lists/partial" "$R/apt/cache/archives/partial" "$R/debs"
  # the Debian mirror this machine already uses, with bookworm-backports added
  U=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$U" ] || U=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$U" ] || U=http://deb.debian.org/debian
  printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$U" > "$R/apt/parts/bp.sources"
  A=(-o Dir::Etc::sourcelist=/dev/null -o "Dir::Etc::sourceparts=$R/apt/parts" -o "Dir::State::Lists=$R/apt/lists" -o "Dir::Cache=$R/apt/cache" -o APT::Sandbox::User=root)
  apt-get "${A[@]}" -qq update >&2
  (cd "$R/debs" && apt-get "${A[@]}" -qq download mesa-vulkan-drivers/bookworm-backports libdrm2/bookworm-backports \
     libdrm-amdgpu1/bookworm-backports libvulkan1 >&2)
  for f in "$R"/debs/*.deb; do dpkg -x "$f" "$R/root"; done
  [ -f "$L/libvulkan_lvp.so" ] || { echo "lavapipe.sh: the packages unpacked without libvulkan_lvp.so" >&2; exit 2; }
fi
printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s/libvulkan_lvp.so","api_version":"1.4.305"}}\n' "$L" > "$R/lvp_icd.json"
echo "export LD_LIBRARY_PATH=$L${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} VK_DRIVER_FILES=$R/lvp_icd.json"
