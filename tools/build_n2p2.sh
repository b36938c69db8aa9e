#!/usr/bin/env bash
# Build n2p2's libnnp and the timing driver bench/n2p2/nnp_time.cpp, for the peer benchmark
# only (bench/bench_peers.py); n2p2 is no dependency of lammps-adv.
#
#   tools/build_n2p2.sh N2P2_SRC      prints the path of the nnp_time executable
#
# N2P2_SRC: n2p2's public source tree (a checkout with src/libnnp) or a git repository of it
# (bare or not: its HEAD is built). Eigen comes from Debian bookworm's libeigen3-dev (headers
# only) through a private apt state (tools/debian_apt.sh: no change to the system). libnnp
# needs nothing else: GSL and MPI serve n2p2's training library, which is not built.
# Cached in ~/.cache/lammps-adv/n2p2-<revision>-<hash of the driver>/ (LAMMPS_ADV_CACHE
# overrides the folder); a second call only prints the path.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "build_n2p2: $*" >&2; }
die() { echo "build_n2p2: $*" >&2; exit 1; }
SRC=${1:-${LAMMPS_ADV_N2P2_SRC:-}}
[ -n "$SRC" ] || die "usage: tools/build_n2p2.sh N2P2_SRC (an n2p2 source tree or git repository)"
[ -e "$SRC" ] || die "$SRC does not exist"
for tool in g++ git apt-get dpkg-deb sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' is needed"
done
if git -C "$SRC" rev-parse --verify -q HEAD >/dev/null 2>&1 &&
   git -C "$SRC" cat-file -e HEAD:src/libnnp/Mode.cpp 2>/dev/null; then
  REV=$(git -C "$SRC" rev-parse --short=12 HEAD)
elif [ -f "$SRC/src/libnnp/Mode.cpp" ]; then
  REV=tree-$(cat "$SRC"/src/libnnp/*.cpp | sha256sum | cut -c1-12)
else
  die "$SRC is neither an n2p2 source tree (src/libnnp/Mode.cpp) nor a git repository of one"
fi
DRIVER=bench/n2p2/nnp_time.cpp
CACHE=${LAMMPS_ADV_CACHE:-$HOME/.cache/lammps-adv}
ENTRY=$CACHE/n2p2-$REV-$(sha256sum "$DRIVER" "$0" | sha256sum | cut -c1-12)
if [ -x "$ENTRY/nnp_time" ]; then echo "$ENTRY/nnp_time"; exit 0; fi

TMP=$ENTRY.tmp
rm -rf "$TMP" && mkdir -p "$TMP/src"
if [ "${REV#tree-}" = "$REV" ]; then
  git -C "$SRC" archive HEAD src/libnnp | tar -x -C "$TMP/src" --strip-components=1
else
  cp -r "$SRC/src/libnnp" "$TMP/src/"
fi
# Eigen headers: Debian's libeigen3-dev, unpacked (not installed)
# shellcheck source=tools/debian_apt.sh
. tools/debian_apt.sh
private_apt "$TMP/apt" bookworm deb
(cd "$TMP" && apt-get -q "${APT_OPTS[@]}" download libeigen3-dev >&2)
dpkg-deb -x "$TMP"/libeigen3-dev_*.deb "$TMP/eigen"
EIGEN=$TMP/eigen/usr/include/eigen3
[ -f "$EIGEN/Eigen/Core" ] || die "libeigen3-dev did not unpack"
# n2p2's own flags (src/makefile.gnu) with OpenMP on; its symmetry-function groups and cache on
FLAGS=(-O3 -march=native -std=c++17 -fopenmp -DEIGEN_DONT_PARALLELIZE -DNDEBUG -I"$TMP/src/libnnp" -I"$EIGEN")
log "compiling libnnp $REV ($(ls "$TMP"/src/libnnp/*.cpp | wc -l) files)"
mkdir -p "$TMP/obj"
ls "$TMP"/src/libnnp/*.cpp | xargs -P "${LAMMPS_ADV_BUILD_JOBS:-2}" -I{} sh -c \
  'g++ "$@" -c "{}" -o "'"$TMP"'/obj/$(basename "{}" .cpp).o"' _ "${FLAGS[@]}" ||
  die "compiling libnnp failed"
g++ "${FLAGS[@]}" "$DRIVER" "$TMP"/obj/*.o -o "$TMP/nnp_time" || die "linking nnp_time failed"
echo "n2p2 $REV, Eigen from Debian libeigen3-dev, g++ ${FLAGS[*]:0:5}" >"$TMP/BUILD_INFO"
rm -rf "$TMP/apt" "$TMP/obj" "$TMP/eigen" "$TMP"/*.deb
rm -rf "$ENTRY" && mv "$TMP" "$ENTRY"
echo "$ENTRY/nnp_time"
