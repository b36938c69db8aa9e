// Energy and forces of one structure with n2p2's libnnp, timed (bench/bench_peers.py).
//
//   nnp_time DIR STRUCTURE REPEATS OUT
//
// DIR holds input.nn, scaling.data and weights.%03zu.data (bench/n2p2_model.py writes them
// from a lammps-adv BP file); STRUCTURE is an n2p2 input.data file with one periodic
// structure. The neighbour list is made once (timed apart); each repeat then computes the
// symmetry functions with derivatives, the networks, the energy and the forces, as n2p2 does
// per MD step. Prints the fastest repeat and the neighbour-list time (seconds); writes the
// energy (eV) and the forces (eV/A, one atom per line, in the file's atom order) to OUT.
// Threads: OpenMP (OMP_NUM_THREADS), n2p2's loops over atoms. NNP_TIME_LOG=1 shows n2p2's log.
#include "Mode.h"
#include "Structure.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <string>

int main(int argc, char **argv)
{
  if (argc != 5) {
    std::cerr << "usage: nnp_time DIR STRUCTURE REPEATS OUT\n";
    return 2;
  }
  const std::string dir = argv[1];
  const int repeats = std::atoi(argv[3]);
  using clock = std::chrono::steady_clock;
  auto seconds = [](clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  };
  try {
    nnp::Mode mode;
    mode.log.writeToStdout = std::getenv("NNP_TIME_LOG") != nullptr;    // n2p2's own log
    mode.initialize();
    mode.loadSettingsFile(dir + "/input.nn");
    mode.setupGeneric();
    mode.setupSymmetryFunctionScaling(dir + "/scaling.data");
    mode.setupNeuralNetworkWeights(dir + "/");

    nnp::Structure s;
    s.setElementMap(mode.elementMap);
    s.readFromFile(argv[2]);
    const double rc = mode.getMaxCutoffRadius();
    auto t0 = clock::now();
    s.calculateNeighborList(rc);
    const double neighbours = seconds(t0, clock::now());

    double best = std::numeric_limits<double>::infinity();
    for (int r = 0; r < repeats; r++) {
      s.freeAtoms(true, rc);    // keeps the neighbour list
      t0 = clock::now();
      mode.calculateSymmetryFunctionGroups(s, true);
      mode.calculateAtomicNeuralNetworks(s, true);
      mode.calculateEnergy(s);
      mode.calculateForces(s);
      best = std::min(best, seconds(t0, clock::now()));
    }
    FILE *out = std::fopen(argv[4], "w");
    if (!out) {
      std::cerr << "nnp_time: cannot write " << argv[4] << "\n";
      return 1;
    }
    std::fprintf(out, "%.17g\n", s.energy);
    for (const auto &a : s.atoms) std::fprintf(out, "%.17g %.17g %.17g\n", a.f[0], a.f[1], a.f[2]);
    std::fclose(out);
    std::printf("best %.6f s  neighbour_list %.6f s  atoms %zu\n", best, neighbours, s.atoms.size());
  } catch (const std::exception &e) {
    std::cerr << "nnp_time: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
