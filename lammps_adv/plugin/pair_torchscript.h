/* pair_style torchscript: evaluate a TorchScript model (the lammps-adv model contract).

   pair_style torchscript [device cpu|cuda|auto]
   pair_coeff * * model.pt Si O        (LAMMPS type i -> model species name)

   The model gets positions [N,3] (local atoms first, then ghosts), species [N], the directed
   edges [2,E] within its cutoff and n_local; it returns per-atom energies [N] (eV). The pair
   style sums the first n_local energies, takes forces by autograd on all N positions (ghost
   forces are summed into their owners by LAMMPS' reverse communication, hence newton on) and
   the virial as sum_i r_i (x) f_i over local and ghost atoms.
*/
#ifndef LMP_ADV_PAIR_TORCHSCRIPT_H
#define LMP_ADV_PAIR_TORCHSCRIPT_H

#include "pair.h"

#include <torch/script.h>

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
  void pick_device();
  // all ranks agree on success; on failure every rank raises the first failing rank's message
  void check_all(bool ok, const std::string &message);

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

  std::vector<int64_t> edge_src, edge_dst;    // edge buffers, reused between steps
};

}    // namespace LAMMPS_NS

#endif
