#!/usr/bin/env bash
# Build (once) a KOKKOS LAMMPS from Debian *source* packages and cache it outside the clone;
# print the folder of the cached build on stdout (the only line on stdout).
#
# LAMMPS_ADV_KOKKOS_LAMMPS selects the release (default 2021, the CI lane):
#   2021  LAMMPS 29 Sep 2021 update 2 = Debian bookworm source package lammps
#                                       20220106.git7586adbb6a+ds1-2
#         Kokkos 3.4.01               = packages/kokkos of Debian source package trilinos 13.2.0-4
#                                       (Debian strips lib/kokkos from lammps; this is the exact
#                                       Kokkos version that LAMMPS asks for, grafted in as lib/kokkos)
#   2025  LAMMPS 4 Feb 2025           = Debian trixie source package lammps 20250204+dfsg.1-2
#         Kokkos 4.5.x                = a Kokkos source tree you give in LAMMPS_ADV_KOKKOS_SRC
#                                       (no Debian source package holds one; e.g.
#                                       git clone -b 4.5.01 https://github.com/kokkos/kokkos;
#                                       its headers are those of Debian's libtrilinos-kokkos-dev 16.1)
#   packages KOKKOS (OpenMP + Serial backends), PLUGIN, MOLECULE (atom_style full); shared library; MPI stubs (serial), or
#   with LAMMPS_ADV_KOKKOS_MPICXX real MPI (the MPICH of the project's environment).
#
# The sources come through the ordinary Debian client with a private apt state (sources list,
# lists and cache in the work folder): the system's apt configuration is not touched and no
# root is needed. The build happens in a work folder next to the cache entry and is renamed
# into place at the end, so an interrupted build never leaves a half cache entry (an
# interrupted build's work folder is resumed by the next call: sources are redone unless
# complete, the Ninja build continues); a lock serialises concurrent callers. Running it again
# with the entry present does nothing.
#
# Environment:
#   LAMMPS_ADV_KOKKOS_LAMMPS  2021 (default) or 2025, see above
#   LAMMPS_ADV_KOKKOS_SRC     with 2025: the Kokkos 4.5.x source tree
#   LAMMPS_ADV_KOKKOS_MPICXX  an MPI C++ compiler wrapper (e.g. .venv/bin/mpicxx of MPICH):
#                             LAMMPS with MPI instead of its serial stubs. The key holds the MPI
#                             version, not the wrapper's path, so clones share the entry; its
#                             programs find libmpi through LD_LIBRARY_PATH (or an MPI already
#                             loaded, as lammps_adv does)
#   LAMMPS_ADV_CACHE          cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/lammps-adv)
#   LAMMPS_ADV_BUILD_JOBS     parallel compile jobs (default 2)
#   LAMMPS_ADV_KOKKOS_CMAKE   extra CMake arguments (part of the cache key), e.g. for CUDA
#                             (docs/kokkos.md)
# Layout of the cache entry:  src/ (LAMMPS sources incl. lib/kokkos), build/ (liblammps.so,
# lmp, lib/kokkos/ with KokkosCore_config.h), BUILD_INFO (versions and flags).
set -euo pipefail

RELEASE=${LAMMPS_ADV_KOKKOS_LAMMPS:-2021}
case "$RELEASE" in
  2021) LAMMPS_PKG=20220106.git7586adbb6a+ds1-2; LAMMPS_NAME="29 Sep 2021 update 2"
        SUITE=bookworm; TRILINOS_PKG=13.2.0-4; KOKKOS_VERSION=3.4.01 ;;
  2025) LAMMPS_PKG=20250204+dfsg.1-2; LAMMPS_NAME="4 Feb 2025"
        SUITE=trixie; TRILINOS_PKG=""; KOKKOS_VERSION=4.5 ;;
  *) echo "build_kokkos_lammps: ERROR: LAMMPS_ADV_KOKKOS_LAMMPS is '$RELEASE'; 2021 or 2025" >&2
     exit 1 ;;
esac
JOBS=${LAMMPS_ADV_BUILD_JOBS:-2}
EXTRA_CMAKE=${LAMMPS_ADV_KOKKOS_CMAKE:-}
CACHE_ROOT=${LAMMPS_ADV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lammps-adv}

CMAKE_ARGS=(
  -G Ninja
  -D CMAKE_BUILD_TYPE=Release
  "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG"
  -D BUILD_SHARED_LIBS=ON -D BUILD_MPI=OFF -D BUILD_OMP=ON -D LAMMPS_EXCEPTIONS=ON
  -D PKG_KOKKOS=ON -D Kokkos_ENABLE_SERIAL=ON -D Kokkos_ENABLE_OPENMP=ON -D PKG_PLUGIN=ON
  # MOLECULE: the project's decks use atom_style full (full/kk under -sf kk)
  -D PKG_MOLECULE=ON
  # lmp, liblammps.so and the Kokkos libraries find each other wherever the entry lies (it is
  # renamed after the build)
  -D CMAKE_BUILD_WITH_INSTALL_RPATH=ON
  "-DCMAKE_INSTALL_RPATH=\$ORIGIN;\$ORIGIN/lib/kokkos/core/src;\$ORIGIN/lib/kokkos/containers/src"
)
# shellcheck disable=SC2206
[ -n "$EXTRA_CMAKE" ] && CMAKE_ARGS+=($EXTRA_CMAKE)
MPICXX=${LAMMPS_ADV_KOKKOS_MPICXX:-}
MPI_ID=""
MPI_PATH_ARGS=()
if [ -n "$MPICXX" ]; then
  [ -x "$MPICXX" ] || { echo "build_kokkos_lammps: ERROR: LAMMPS_ADV_KOKKOS_MPICXX=$MPICXX is not an executable" >&2; exit 1; }
  MPI_BIN=$(cd "$(dirname "$MPICXX")" && pwd)
  CMAKE_ARGS=("${CMAKE_ARGS[@]/BUILD_MPI=OFF/BUILD_MPI=ON}")
  MPI_ID=$( { "$MPI_BIN/mpichversion" 2>/dev/null || "$MPICXX" --version; } | head -1 | tr -s ' ')
  MPI_PATH_ARGS=(-D "MPI_CXX_COMPILER=$MPI_BIN/$(basename "$MPICXX")" -D "MPI_C_COMPILER=$MPI_BIN/mpicc")
  # the wrapper's library folder, for running lmp below
  MPI_LIBDIR=$("$MPICXX" -show | tr ' ' '\n' | sed -n 's/^-L//p' | head -1)
  export LD_LIBRARY_PATH="$MPI_LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

log() { echo "build_kokkos_lammps: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=tools/debian_apt.sh
. "$(dirname "$0")/debian_apt.sh"

for tool in apt-get dpkg-source cmake ninja c++ tar flock sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' is needed (Debian: apt-get install cmake ninja-build g++ dpkg-dev util-linux)"
done

# key: package versions, build flags and compiler, so that another configuration never
# reuses this entry
KOKKOS_SRC=""
if [ "$RELEASE" = 2025 ]; then
  KOKKOS_SRC=${LAMMPS_ADV_KOKKOS_SRC:-}
  [ -f "$KOKKOS_SRC/CMakeLists.txt" ] ||
    die "LAMMPS 4 Feb 2025 needs a Kokkos 4.5 source tree in LAMMPS_ADV_KOKKOS_SRC (git clone -b 4.5.01 https://github.com/kokkos/kokkos)"
  KOKKOS_SRC=$(cd "$KOKKOS_SRC" && pwd)
  KOKKOS_VERSION=$(awk '/set\(Kokkos_VERSION_(MAJOR|MINOR|PATCH)/ {gsub(/\)/, "", $2); v = v (v == "" ? "" : ".") $2} END {print v}' "$KOKKOS_SRC/CMakeLists.txt")
  case "$KOKKOS_VERSION" in
    4.5.*|4.6.*) ;;
    *) die "$KOKKOS_SRC holds Kokkos '$KOKKOS_VERSION'; LAMMPS 4 Feb 2025 needs 4.5 or 4.6" ;;
  esac
fi
KEY_TEXT="lammps=$LAMMPS_PKG trilinos=$TRILINOS_PKG kokkos=$KOKKOS_VERSION mie-graft=2 ${CMAKE_ARGS[*]} $(c++ --version | head -1)"
[ -n "$MPI_ID" ] && KEY_TEXT="$KEY_TEXT mpi=$MPI_ID"
KEY=$(printf '%s' "$KEY_TEXT" | sha256sum | cut -c1-12)
case "$RELEASE" in
  2021) ENTRY="$CACHE_ROOT/kokkos-lammps-20210929u2-kokkos$KOKKOS_VERSION${MPI_ID:+-mpi}-$KEY" ;;
  2025) ENTRY="$CACHE_ROOT/kokkos-lammps-20250204-kokkos$KOKKOS_VERSION${MPI_ID:+-mpi}-$KEY" ;;
esac

if [ -f "$ENTRY/BUILD_INFO" ]; then
  echo "$ENTRY"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.kokkos-lammps.lock"
log "waiting for the build lock ($CACHE_ROOT/.kokkos-lammps.lock)"
flock 9
if [ -f "$ENTRY/BUILD_INFO" ]; then    # another caller built it meanwhile
  echo "$ENTRY"
  exit 0
fi

# the work folder, on the same file system as the entry: the final mv is atomic
TMP="$CACHE_ROOT/.work-$(basename "$ENTRY")"
T0=$(date +%s)
log "building in $TMP (entry $ENTRY)"
mkdir -p "$TMP"
if [ ! -f "$TMP/sources.done" ]; then
rm -rf "$TMP"/*

# --- sources through a private apt state (tools/debian_apt.sh) -----------------------------------
private_apt "$TMP/apt" "$SUITE" deb-src
PACKAGES=("lammps=$LAMMPS_PKG")
[ -n "$TRILINOS_PKG" ] && PACKAGES+=("trilinos=$TRILINOS_PKG")
fetch_sources "$TMP/dl" "${PACKAGES[@]}"

log "unpacking"
LAMMPS_ORIG=$(orig_tarball "$TMP/dl" lammps "$LAMMPS_PKG")
if [ -f "$TMP/dl/lammps_${LAMMPS_PKG#*:}.dsc" ]; then
  dpkg-source --no-check -x "$TMP/dl/lammps_${LAMMPS_PKG#*:}.dsc" "$TMP/src" >/dev/null
else
  mkdir -p "$TMP/src"
  tar -xf "$LAMMPS_ORIG" -C "$TMP/src" --strip-components=1
fi
[ -d "$TMP/src/lib/kokkos" ] && die "unexpected: the lammps source package has lib/kokkos"
if [ -n "$TRILINOS_PKG" ]; then
  TRILINOS_TAR=$(orig_tarball "$TMP/dl" trilinos "$TRILINOS_PKG")
  mkdir -p "$TMP/trilinos"
  tar -xf "$TRILINOS_TAR" -C "$TMP/trilinos" --wildcards '*/packages/kokkos/*'
  KOKKOS_SRC=$(ls -d "$TMP"/trilinos/*/packages/kokkos)
  grep -q "Kokkos_VERSION_MAJOR 3" "$KOKKOS_SRC/CMakeLists.txt" &&
    grep -q "Kokkos_VERSION_MINOR 4" "$KOKKOS_SRC/CMakeLists.txt" ||
    die "trilinos $TRILINOS_PKG does not hold Kokkos $KOKKOS_VERSION"
  mv "$KOKKOS_SRC" "$TMP/src/lib/kokkos"
else
  cp -r "$KOKKOS_SRC" "$TMP/src/lib/kokkos"
  rm -rf "$TMP/src/lib/kokkos/.git"
fi
# bks-dsf needs mie/cut, the one style it takes from EXTRA-PAIR: graft that one style into the
# core rather than build the whole package and the four Kokkos styles it would pull in
# (~3 min on 2 cores). Under another file name: LAMMPS' CMake refuses package files in src/.
cp "$TMP/src/src/EXTRA-PAIR/pair_mie_cut.h" "$TMP/src/src/pair_mie_cut_graft.h"
sed 's/#include "pair_mie_cut.h"/#include "pair_mie_cut_graft.h"/' \
  "$TMP/src/src/EXTRA-PAIR/pair_mie_cut.cpp" >"$TMP/src/src/pair_mie_cut_graft.cpp"
grep -q '"pair_mie_cut_graft.h"' "$TMP/src/src/pair_mie_cut_graft.cpp" || die "mie/cut graft failed"
# what a plugin build does not need
rm -rf "$TMP/dl" "$TMP/trilinos" "$TMP/apt" "$TMP/src/doc" "$TMP/src/examples" "$TMP/src/bench" \
       "$TMP/src/unittest" "$TMP/src/tools" "$TMP/src/potentials"
touch "$TMP/sources.done"
else
  log "resuming the build of an earlier, interrupted call"
fi

# --- configure and build ------------------------------------------------------------------------
log "cmake configure"
[ -f "$TMP/build/build.ninja" ] || cmake -S "$TMP/src/cmake" -B "$TMP/build" "${CMAKE_ARGS[@]}" "${MPI_PATH_ARGS[@]}" >"$TMP/configure.log" 2>&1 ||
  { tail -30 "$TMP/configure.log" >&2; die "cmake configure failed"; }
log "building with $JOBS jobs (a few minutes)"
cmake --build "$TMP/build" -j "$JOBS" >"$TMP/build.log" 2>&1 ||
  { tail -40 "$TMP/build.log" >&2; die "build failed"; }
HELP=$("$TMP/build/lmp" -h) || die "the built lmp does not run"
grep -q "KOKKOS package API: .*OpenMP" <<<"$HELP" ||
  die "the built lmp does not report the KOKKOS OpenMP backend"
# object files are not needed by a plugin build (headers, the library and lmp are)
find "$TMP/build" -name '*.o' -delete

{
  echo "lammps_source_package=lammps $LAMMPS_PKG (LAMMPS $LAMMPS_NAME, Debian $SUITE)"
  if [ -n "$TRILINOS_PKG" ]; then echo "kokkos=$KOKKOS_VERSION from trilinos $TRILINOS_PKG"
  else echo "kokkos=$KOKKOS_VERSION from $KOKKOS_SRC"; fi
  echo "cmake=${CMAKE_ARGS[*]} ${MPI_PATH_ARGS[*]}"
  [ -n "$MPI_ID" ] && echo "mpi=$MPI_ID"
  echo "compiler=$(c++ --version | head -1)"
  echo "build_seconds=$(( $(date +%s) - T0 ))"
  grep -E "KOKKOS package API|Large-scale" <<<"$HELP" || true
} >"$TMP/BUILD_INFO"
mv "$TMP/configure.log" "$TMP/build.log" "$TMP/build/"

rm -rf "$TMP/entry"
mkdir "$TMP/entry"
mv "$TMP/src" "$TMP/build" "$TMP/BUILD_INFO" "$TMP/entry/"
# BUILD_INFO inside marks the entry complete; the rename is atomic
mv -T "$TMP/entry" "$ENTRY"
rm -rf "$TMP"
log "done in $(( $(date +%s) - T0 )) s: $ENTRY"
echo "$ENTRY"
