#!/usr/bin/env bash
# Build torchscriptplugin.so with pair_style torchscript/kk against the cached KOKKOS LAMMPS
# (tools/build_kokkos_lammps.sh builds that first when missing) and the torch of the project's
# virtual environment.
#
#   tools/build_kokkos_plugin.sh [PLUGIN_BUILD_DIR] [PYTHON]
#     PLUGIN_BUILD_DIR  default build/plugin-kokkos (the plugin lands there; kept for
#                       incremental rebuilds)
#     PYTHON            the Python whose torch is used (default .venv/bin/python)
# LAMMPS is built with the MPICH of that Python's environment (its mpicxx beside it) when there
# is one, else with LAMMPS' serial MPI stubs (LAMMPS_ADV_KOKKOS_MPICXX= forces the stubs).
# Writes PLUGIN_BUILD_DIR/kokkos_lammps.txt (the LAMMPS cache entry) and kokkos_mpi.txt (the
# MPI library folder, empty with stubs) for the tests and prints the plugin's path.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build/plugin-kokkos}
PY=${2:-.venv/bin/python}
JOBS=${LAMMPS_ADV_BUILD_JOBS:-2}

if [ -z "${LAMMPS_ADV_KOKKOS_MPICXX+set}" ] && [ -x "$(dirname "$PY")/mpicxx" ]; then
  export LAMMPS_ADV_KOKKOS_MPICXX="$(dirname "$PY")/mpicxx"
fi
MPI_ARGS=(-D LAMMPS_MPI_STUBS=ON)
MPI_LIBDIR=""
if [ -n "${LAMMPS_ADV_KOKKOS_MPICXX:-}" ]; then
  SHOW=$("$LAMMPS_ADV_KOKKOS_MPICXX" -show | tr ' ' '\n')
  MPI_INC=$(sed -n 's/^-I//p' <<<"$SHOW" | head -1)
  MPI_LIBDIR=$(sed -n 's/^-L//p' <<<"$SHOW" | head -1)
  MPI_ARGS=(-D LAMMPS_MPI_STUBS=OFF -D "MPI_INCLUDE_DIR=$MPI_INC" -D "MPI_LIBRARY=$MPI_LIBDIR/libmpi.so")
fi
ENTRY=$(tools/build_kokkos_lammps.sh)
TORCH_CMAKE=$("$PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ ! -f "$OUT/CMakeCache.txt" ] || ! grep -q "LAMMPS_SOURCE_DIR:PATH=$ENTRY/src" "$OUT/CMakeCache.txt"; then
  rm -rf "$OUT"/CMakeCache.txt "$OUT"/CMakeFiles
  cmake -S lammps_adv/plugin -B "$OUT" -G Ninja \
    -D CMAKE_PREFIX_PATH="$TORCH_CMAKE" \
    -D LAMMPS_SOURCE_DIR="$ENTRY/src" \
    -D LAMMPS_BUILD_DIR="$ENTRY/build" \
    -D LAMMPS_LIBRARY="$ENTRY/build/liblammps.so" \
    -D LAMMPS_ADV_KOKKOS=ON "${MPI_ARGS[@]}" -D LAMMPS_EXCEPTIONS=ON \
    -D PLUGIN_OUTPUT_DIR="$OUT" >"$OUT/configure.log" 2>&1 ||
    { tail -30 "$OUT/configure.log" >&2; echo "build_kokkos_plugin: cmake configure failed" >&2; exit 1; }
fi
cmake --build "$OUT" -j "$JOBS" >"$OUT/build.log" 2>&1 ||
  { grep -E "error|Error" "$OUT/build.log" | head -30 >&2; echo "build_kokkos_plugin: build failed ($OUT/build.log)" >&2; exit 1; }
echo "$ENTRY" >"$OUT/kokkos_lammps.txt"
echo "$MPI_LIBDIR" >"$OUT/kokkos_mpi.txt"
echo "$OUT/torchscriptplugin.so"
