#!/usr/bin/env bash
# Compile and link the plugin with pair_style torchscript/kk against the newest LAMMPS and Kokkos
# that Debian unstable (sid) has, headers only: a check that the sources follow the KOKKOS API
# of LAMMPS after 2025 (at the time of writing LAMMPS 4 Jul 2026 + Kokkos 5.2.2). Nothing
# runs: sid's Kokkos libraries need a newer C library than Debian 12, and no LAMMPS is built.
# To build and run on a newer LAMMPS, see docs/kokkos.md (LAMMPS_ADV_KOKKOS_LAMMPS=2025).
#
#   tools/check_kokkos_api.sh [WORK_DIR] [PYTHON]
#     WORK_DIR  default build/kokkos-api-check (sources ~250 MB download, headers kept)
#     PYTHON    the Python whose torch is used (default .venv/bin/python)
#
# Sources: the sid source package `lammps` (its src/ headers) and the sid binary package
# `libkokkos-dev` (Kokkos' installed headers and KokkosCore_config.h: Serial + OpenMP), through
# a private apt state (tools/debian_apt.sh). Prints the versions and the plugin.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-build/kokkos-api-check}
PY=${2:-.venv/bin/python}
JOBS=${LAMMPS_ADV_BUILD_JOBS:-2}
log() { echo "check_kokkos_api: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=tools/debian_apt.sh
. tools/debian_apt.sh    # (the working folder is the repository root)
for tool in apt-get dpkg-deb cmake ninja c++ tar; do
  command -v "$tool" >/dev/null || die "'$tool' is needed"
done
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

private_apt "$WORK/apt" sid deb deb-src
mkdir -p "$WORK/dl"

LAMMPS_PKG=$(apt-cache "${APT_OPTS[@]}" showsrc lammps | awk '/^Version:/ {print $2}' | sort -V | tail -1)
KOKKOS_PKG=$(apt-cache "${APT_OPTS[@]}" show libkokkos-dev | awk '/^Version:/ {print $2}' | sort -V | tail -1)
[ -n "$LAMMPS_PKG" ] && [ -n "$KOKKOS_PKG" ] || die "sid has no lammps source or libkokkos-dev package"
log "lammps $LAMMPS_PKG (source), libkokkos-dev $KOKKOS_PKG"

SRC="$WORK/lammps-$LAMMPS_PKG"
if [ ! -f "$SRC/src/version.h" ]; then
  rm -f "$WORK"/dl/lammps_*
  fetch_sources "$WORK/dl" "lammps=$LAMMPS_PKG"
  ORIG=$(orig_tarball "$WORK/dl" lammps "$LAMMPS_PKG")
  # the headers only (the tarball may or may not have a top folder)
  rm -rf "$SRC.tmp" && mkdir -p "$SRC.tmp"
  tar -xf "$ORIG" -C "$SRC.tmp" --wildcards '*src/*.h' '*src/*.hpp'
  VERSION_H=$(find "$SRC.tmp" -maxdepth 3 -path '*/src/version.h' | head -1)
  [ -n "$VERSION_H" ] || die "no src/version.h in $ORIG"
  mv "$(dirname "$(dirname "$VERSION_H")")" "$SRC"
  rm -rf "$SRC.tmp" "$ORIG"
fi
KK="$WORK/kokkos-$KOKKOS_PKG"
if [ ! -f "$KK/include/kokkos/KokkosCore_config.h" ]; then
  (cd "$WORK/dl" && apt-get -q "${APT_OPTS[@]}" download "libkokkos-dev=$KOKKOS_PKG" >&2)
  rm -rf "$KK.tmp" && mkdir -p "$KK.tmp"
  dpkg-deb -x "$WORK"/dl/libkokkos-dev_*.deb "$KK.tmp"
  mkdir -p "$KK" && mv "$KK.tmp/usr/include" "$KK/include" && rm -rf "$KK.tmp" "$WORK"/dl/*.deb
fi
LAMMPS_VERSION=$(sed -n 's/.*LAMMPS_VERSION "\(.*\)".*/\1/p' "$SRC/src/version.h")
KOKKOS_VERSION=$(awk '/define KOKKOS_VERSION / {v = $3; printf "%d.%d.%d", v / 10000, v / 100 % 100, v % 100}' "$KK/include/kokkos/KokkosCore_config.h")

# the layout the plugin's CMake expects of a LAMMPS build folder: Kokkos' configured headers in
# lib/kokkos (here: all of its installed headers); no Kokkos library and no liblammps.so are
# linked (a plugin may leave their symbols to the LAMMPS that loads it)
FAKE="$WORK/lammps-build"
rm -rf "$FAKE" && mkdir -p "$FAKE/lib"
ln -s "$KK/include/kokkos" "$FAKE/lib/kokkos"
TORCH_CMAKE=$("$PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
OUT="$WORK/plugin"
rm -rf "$OUT"
cmake -S lammps_adv/plugin -B "$OUT" -G Ninja -D CMAKE_PREFIX_PATH="$TORCH_CMAKE" \
  -D LAMMPS_SOURCE_DIR="$SRC" -D LAMMPS_BUILD_DIR="$FAKE" -D LAMMPS_ADV_KOKKOS=ON \
  -D LAMMPS_ADV_KOKKOS_LINK=OFF -D LAMMPS_MPI_STUBS=ON \
  -D PLUGIN_OUTPUT_DIR="$OUT" >"$WORK/configure.log" 2>&1 ||
  { tail -30 "$WORK/configure.log" >&2; die "cmake configure failed ($WORK/configure.log)"; }
cmake --build "$OUT" -j "$JOBS" --target torchscriptplugin >"$WORK/build.log" 2>&1 ||
  { grep -E "error" "$WORK/build.log" | head -30 >&2; die "build failed ($WORK/build.log)"; }
grep -q "warning" "$WORK/build.log" && { grep "warning" "$WORK/build.log" | head -10 >&2; }
log "built against LAMMPS $LAMMPS_VERSION (Debian lammps $LAMMPS_PKG) and Kokkos $KOKKOS_VERSION (libkokkos-dev $KOKKOS_PKG)"
echo "$OUT/torchscriptplugin.so"
