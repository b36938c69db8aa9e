/* pair_style torchscript: evaluate a TorchScript model (the lammps-adv model contract).

   pair_style torchscript [device cpu|cuda|auto] [periodic auto|no] [halo auto|no]
   pair_coeff * * model.pt Si O        (LAMMPS type i -> model species name)

   The model gets positions [N,3] (local atoms first, then ghosts), species [N], the directed
   edges [2,E] within its cutoff and n_local; it returns per-atom energies [N] (eV). The pair
   style sums the first n_local energies, takes forces by autograd on all N positions (ghost
   forces are summed into their owners by LAMMPS' reverse communication, hence newton on) and
   the virial as sum_i r_i (x) f_i over local and ghost atoms.

   A message-passing model that also exports energies_periodic(positions, species, edges,
   n_local, image_of) -> [n_local] is called through it wherever every ghost of a rank is an
   image of one of that rank's atoms (one rank): ghosts take their owner's state, and only
   local atoms are centres. `periodic no` never calls it.

   A message-passing model that exports the halo methods (halo_states, halo_layer,
   halo_energies; attribute n_rounds) runs one round at a time on local atoms and the ghosts
   within one cutoff: between rounds the ghosts' node states come from their owners by
   LAMMPS' forward communication, and in the backward pass the gradients on ghost states go
   back to their owners by reverse communication (evaluate_halo()). That is the path on
   several ranks (and on one rank with `periodic no`); `halo no` turns it off (then
   forward() on the ghost graph).

   compute() is three steps, each its own function: build_edges() (neighbour list -> edge
   tensor), evaluate() or evaluate_halo() (the model call and the contract checks; shared
   with the Kokkos twin, which hands them tensors on its views' memory) and accumulate()
   (forces, energy and virial into LAMMPS' arrays).
*/
#ifndef LMP_ADV_PAIR_TORCHSCRIPT_H
#define LMP_ADV_PAIR_TORCHSCRIPT_H

#include "pair.h"
#include "short_list.h"

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

// Pair communication: comm->forward_comm_pair(Pair *) up to LAMMPS 2021, forward_comm(Pair *)
// from 2022 (CMakeLists.txt reads comm.h when at hand; else by version)
#ifndef LAMMPS_ADV_COMM_PAIR_NAMES
#if LAMMPS_ADV_LAMMPS_VERSION >= 20220217
#define LAMMPS_ADV_COMM_PAIR_NAMES 0
#else
#define LAMMPS_ADV_COMM_PAIR_NAMES 1
#endif
#endif

#include <string>
#include <vector>

namespace LAMMPS_NS {

class PairTorchScript : public Pair {
 public:
  PairTorchScript(class LAMMPS *);
  ~PairTorchScript() override;

  void compute(int, int) override;
  // node states (halo path): ghosts' rows from their owners, ghosts' gradients to owners
  int pack_forward_comm(int, int *, double *, int, int *) override;
  void unpack_forward_comm(int, int, double *) override;
  int pack_reverse_comm(int, int, double *) override;
  void unpack_reverse_comm(int, int *, double *) override;
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
  // from short_list (rebuilt from LAMMPS' full list when stale); centres: local atoms, and
  // with ghost_centres the ghosts of the list too
  int64_t build_edges(double **x, bool ghost_centres);
  // for energies_periodic(): every ghost's owner into image_buffer, if all are local atoms
  bool ghost_owners(int nlocal, int nall);
  // the model on positions [nall,3] (float64, on the model's device: not copied, the model
  // does not write to them), species [nall], edges [2,E]; checks the contract on its output.
  // Never throws: failures come back in ok/message for check_all().
  // With image_of [nall] (each atom's owner, a local atom): the model's energies_periodic()
  // instead of forward().
  ModelOutput evaluate(torch::Tensor pos, const torch::Tensor &species, const torch::Tensor &edges,
                       int64_t nlocal, bool per_atom_energy,
                       const torch::Tensor &image_of = torch::Tensor());
  // the halo path: round by round, ghost states by forward communication, their gradients
  // back by reverse communication; edges centred on local atoms. Never throws; all ranks
  // leave together when one fails (so none waits in a communication).
  ModelOutput evaluate_halo(torch::Tensor pos, const torch::Tensor &species,
                            const torch::Tensor &edges, int64_t nlocal, bool per_atom_energy);
  // forward (ghost rows of halo_buffer from their owners) or reverse (ghost rows added into
  // their owners) communication of halo_buffer; the Kokkos twin routes it through the host
  virtual void communicate_states(bool reverse);
  // energy, forces (minus grad_pos) and per-atom energies into out; non-finite ones fail it
  void finish(ModelOutput &out, const torch::Tensor &e, const torch::Tensor &etot,
              const torch::Tensor &grad_pos, int64_t nlocal, bool per_atom_energy);
  // which path compute() takes this step (logged when it changes)
  enum class Path { FORWARD, PERIODIC, HALO };
  Path choose_path(int nlocal, int nall);
  void accumulate(const ModelOutput &out, double **x, double **f, int nlocal, int nall);

  DeviceChoice device_choice;
  torch::Device device;
  torch::jit::Module model;
  bool model_loaded;
  std::string model_path;
  double cutoff;             // edges within this distance (A)
  double receptive_field;    // ghost cutoff needed by message passing (A)
  bool message_passing;      // receptive_field > cutoff
  bool ghost_graph;          // forward() is the path: ghosts out to receptive_field, their edges
  bool periodic_allowed;     // pair_style keyword periodic auto (default) | no
  bool periodic_method;      // message passing with energies_periodic() (ghosts as images)
  bool halo_allowed;         // pair_style keyword halo auto (default) | no
  bool halo_method;          // message passing with the halo methods
  int halo_rounds = 0;       // the model's n_rounds (halo_layer calls per step)
  int halo_width = 0;        // doubles per node state
  int path_logged;           // which path the log last named (-1: none yet)
  std::vector<std::string> model_species;
  std::vector<int64_t> type2species;    // LAMMPS type (1..ntypes) -> model species index

  // reused between steps: the pairs near the cutoff, the edges [2, E] (room for
  // 2 x edge_capacity), the species
  ShortList short_list;
  torch::Tensor edge_buffer, species_buffer, image_buffer;
  torch::Tensor halo_buffer;    // [rows, halo_width] on the CPU: what the communication moves
  std::vector<int> local_of_tag;    // atom ID -> local index (energies_periodic)
  int64_t edge_capacity = 0;
};

}    // namespace LAMMPS_NS

#endif
