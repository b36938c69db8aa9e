/* pair_style torchscript: evaluate a TorchScript model (the lammps-adv model contract).

   pair_style torchscript [device cpu|cuda|auto]
   pair_coeff * * model.pt Si O        (LAMMPS type i -> model species name)

   The model gets positions [N,3] (local atoms first, then ghosts), species [N], the directed
   edges [2,E] within its cutoff and n_local; it returns per-atom energies [N] (eV). The pair
   style sums the first n_local energies, takes forces by autograd on all N positions (ghost
   forces are summed into their owners by LAMMPS' reverse communication, hence newton on) and
   the virial as sum_i r_i (x) f_i over local and ghost atoms.

   compute() is three steps, each its own function: build_edges() (neighbour list -> edge
   tensor), evaluate() (the model call and the contract checks; one function shared with the
   Kokkos twin, which hands it tensors on its views' memory) and accumulate() (forces, energy
   and virial into LAMMPS' arrays).
*/
#ifndef LMP_ADV_PAIR_TORCHSCRIPT_H
#define LMP_ADV_PAIR_TORCHSCRIPT_H

#include "pair.h"

#include <torch/script.h>

// The neighbour-request API: LAMMPS up to 29 Sep 2021 (stable) has neighbor->request() and the
// requests[] array, LAMMPS 2022+ has neighbor->add_request(). CMakeLists.txt detects it in
// neighbor.h; without that, by version (the refactor shipped in 17 Feb 2022).
#ifndef LAMMPS_ADV_NEIGH_ADD_REQUEST
#if LAMMPS_ADV_LAMMPS_VERSION >= 20220217
#define LAMMPS_ADV_NEIGH_ADD_REQUEST 1
#else
#define LAMMPS_ADV_NEIGH_ADD_REQUEST 0
#endif
#endif

#include <cstring>
#include <string>
#include <vector>

namespace LAMMPS_NS {

class PairTorchScript : public Pair {
 public:
  PairTorchScript(class LAMMPS *);
  ~PairTorchScript() override;

  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;

 protected:
  enum class DeviceChoice { CPU, CUDA, AUTO };

  void allocate();
  void load_model(const std::string &path);
  // the device the model runs on (the Kokkos twin: where its views live)
  virtual void pick_device();
  // the neighbour list request (the Kokkos twin asks for a Kokkos full list)
  virtual void request_neighbors();
  // all ranks agree on success; on failure every rank raises the first failing rank's message
  void check_all(bool ok, const std::string &message);

  // what one model call gives back; forces [nall,3] and energies [nlocal] on the model's device
  struct ModelOutput {
    bool ok = true;
    std::string message;    // why not ok, one line
    double energy = 0.0;    // sum of the local atoms' energies (eV)
    torch::Tensor forces, energies;
  };
  // edges (centre, neighbour) within the model cutoff, sorted by centre, into edge_buffer
  int64_t build_edges(double **x);
  // One branch-free pass over a full neighbour list: every listed pair is written (the
  // destination into out[room + k]) and k advances only for one within the cutoff (about half
  // of them with a 2 A skin, where a branch would be mispredicted every other time); the
  // destinations then move next to the sources, so out holds one contiguous [2, n] array.
  // room >= the number of listed pairs; returns n. centre(ii) is the ii-th centre, count(i)
  // and row(i) its neighbours, xyz the coordinates. Shared with the Kokkos twin (one host
  // thread).
  template <class Centre, class Count, class Row>
  static int64_t compact_edges(int ncentre, Centre centre, Count count, Row row,
                               const double (*xyz)[3], double cutsq, int64_t *out, int64_t room)
  {
    int64_t *src = out, *dst = out + room;
    int64_t n = 0;
    for (int ii = 0; ii < ncentre; ii++) {
      const int i = centre(ii);
      const double xi = xyz[i][0], yi = xyz[i][1], zi = xyz[i][2];
      const int *jlist = row(i);
      const int jnum = count(i);
      for (int jj = 0; jj < jnum; jj++) {
        const int j = jlist[jj] & NEIGHMASK;    // the special-bond bits off
        const double dx = xyz[j][0] - xi, dy = xyz[j][1] - yi, dz = xyz[j][2] - zi;
        src[n] = i;
        dst[n] = j;
        n += (dx * dx + dy * dy + dz * dz < cutsq);
      }
    }
    std::memmove(src + n, dst, n * sizeof(int64_t));
    return n;
  }
  // the model on positions [nall,3] (float64, on the model's device: not copied, the model
  // does not write to them), species [nall], edges [2,E]; checks the contract on its output.
  // Never throws: failures come back in ok/message for check_all().
  ModelOutput evaluate(torch::Tensor pos, const torch::Tensor &species, const torch::Tensor &edges,
                       int64_t nlocal, bool per_atom_energy);
  void accumulate(const ModelOutput &out, double **x, double **f, int nlocal, int nall);

  DeviceChoice device_choice;
  torch::Device device;
  torch::jit::Module model;
  bool model_loaded;
  std::string model_path;
  double cutoff;             // edges within this distance (A)
  double receptive_field;    // ghost cutoff needed by message passing (A)
  bool message_passing;      // receptive_field > cutoff: edges of ghost atoms too
  std::vector<std::string> model_species;
  std::vector<int64_t> type2species;    // LAMMPS type (1..ntypes) -> model species index

  // reused between steps: the edges [2, E] (room for 2 x edge_capacity), the species
  torch::Tensor edge_buffer, species_buffer;
  int64_t edge_capacity = 0;
};

}    // namespace LAMMPS_NS

#endif
