/* pair_style torchscript/kk (lammps-adv). See pair_torchscript_kokkos.h and docs/kokkos.md. */

#include "pair_torchscript_kokkos.h"

#include "atom_kokkos.h"
#include "atom_masks.h"
#include "comm.h"
#include "error.h"
#include "kokkos.h"
#include "lammps.h"
#include "memory_kokkos.h"
#include "neigh_list_kokkos.h"
#include "neigh_request.h"    // set_kokkos_host/device (2022+), kokkos_host/device (2021)
#include "neighbor.h"
#include "update.h"
#include "utils.h"

#include <torch/cuda.h>

#include <string>
#include <type_traits>

using namespace LAMMPS_NS;

namespace {

// grow a 1-d view to at least n entries (with some slack), contents not kept
template <class View> void grow(View &v, int64_t n, const char *name)
{
  if ((int64_t) v.extent(0) < n) v = View(Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(name)), n + n / 4 + 64);
}

}    // namespace

/* ---------------------------------------------------------------------- */

template <class DeviceType>
PairTorchScriptKokkos<DeviceType>::PairTorchScriptKokkos(LAMMPS *lmp) : PairTorchScript(lmp)
{
  // without -k on, atom is no AtomKokkos and there are no Kokkos neighbour lists
  if (!lmp->kokkos)
    error->all(FLERR,
               "pair_style torchscript/kk needs the KOKKOS package enabled: run with "
               "-k on t N -sf kk (or use pair_style torchscript)");
  kokkosable = 1;
  atomKK = (AtomKokkos *) atom;
  execution_space = ExecutionSpaceFromDevice<DeviceType>::space;
  datamask_read = X_MASK | F_MASK | TYPE_MASK | ENERGY_MASK | VIRIAL_MASK;
  datamask_modify = F_MASK | ENERGY_MASK | VIRIAL_MASK;
}

template <class DeviceType> PairTorchScriptKokkos<DeviceType>::~PairTorchScriptKokkos()
{
  if (copymode) return;
  // eatom belongs to the dual view; Pair's destructor must not free it again
  memoryKK->destroy_kokkos(k_eatom, eatom);
  eatom = nullptr;
}

/* ----------------------------------------------------------------------
   The model runs where the Kokkos views live: the CPU for host backends (OpenMP, Serial),
   the Kokkos GPU for Cuda.
------------------------------------------------------------------------- */

template <class DeviceType> void PairTorchScriptKokkos<DeviceType>::pick_device()
{
  constexpr bool host_memory =
      Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename DeviceType::memory_space>::accessible;
  if (host_memory) {
    if (device_choice == DeviceChoice::CUDA)
      error->all(FLERR,
                 "pair_style torchscript/kk: device cuda, but Kokkos keeps the atoms in host "
                 "memory ({} backend) and the model runs where the atoms are; use a Kokkos CUDA "
                 "build, or pair_style torchscript device cuda without -sf kk",
                 DeviceType::name());
    device = torch::Device(torch::kCPU);
  } else {
#ifdef KOKKOS_ENABLE_CUDA
    if (!torch::cuda::is_available())
      error->all(FLERR,
                 "pair_style torchscript/kk: Kokkos keeps the atoms on a CUDA device, but "
                 "LibTorch finds no CUDA device (CPU-only torch build?); build the plugin "
                 "against a CUDA LibTorch (docs/kokkos.md)");
    if (device_choice == DeviceChoice::CPU && comm->me == 0)
      error->warning(FLERR,
                     "pair_style torchscript/kk: device cpu ignored, the model runs on the GPU "
                     "that holds the Kokkos views");
    device = torch::Device(torch::kCUDA, (c10::DeviceIndex) Kokkos::Cuda().cuda_device());
#else
    error->all(FLERR,
               "pair_style torchscript/kk supports the host backends and Cuda, not Kokkos "
               "backend {}",
               DeviceType::name());
#endif
  }
  if (comm->me == 0)
    utils::logmesg(lmp, "pair_style torchscript/kk: Kokkos backend {}, running the model on {}\n",
                   DeviceType::name(), device.str());
}

/* ----------------------------------------------------------------------
   A Kokkos full list (local atoms; with their ghosts for message passing): the edges come
   straight from it, both directions, no half-list expansion.
------------------------------------------------------------------------- */

template <class DeviceType> void PairTorchScriptKokkos<DeviceType>::request_neighbors()
{
  const bool on_host =
      std::is_same<DeviceType, LMPHostType>::value && !std::is_same<DeviceType, LMPDeviceType>::value;
  const bool on_device = std::is_same<DeviceType, LMPDeviceType>::value;
#if LAMMPS_ADV_NEIGH_ADD_REQUEST
  auto req = neighbor->add_request(this, ghost_graph
                                             ? (NeighConst::REQ_FULL | NeighConst::REQ_GHOST)
                                             : NeighConst::REQ_FULL);
  req->set_kokkos_host(on_host);
  req->set_kokkos_device(on_device);
#else
  // two statements: request() may reallocate requests[], and in a[b] C++17 reads a first
  const int irequest = neighbor->request(this, instance_me);
  NeighRequest *req = neighbor->requests[irequest];
  req->kokkos_host = on_host ? 1 : 0;
  req->kokkos_device = on_device ? 1 : 0;
  req->half = 0;
  req->full = 1;
  req->ghost = ghost_graph ? 1 : 0;
#endif
}

template <class DeviceType> void PairTorchScriptKokkos<DeviceType>::init_style()
{
  PairTorchScript::init_style();    // checks, request_neighbors(), ghost cutoff

  // LAMMPS type -> model species, on the Kokkos device
  const int n = (int) type2species.size();
  d_type2species = Kokkos::View<int64_t *, DeviceType>("torchscript/kk:type2species", n);
  auto h = Kokkos::create_mirror_view(d_type2species);
  for (int i = 0; i < n; i++) h(i) = type2species[i];
  Kokkos::deep_copy(d_type2species, h);
}

/* ---------------------------------------------------------------------- */

template <class DeviceType> void PairTorchScriptKokkos<DeviceType>::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag, 0);    // 0: per-atom energies live in the Kokkos view k_eatom
  if (vflag_atom || cvflag_atom)
    error->all(FLERR,
               "pair_style torchscript does not support per-atom virials (compute stress/atom, "
               "centroid/stress/atom); use the global pressure");
  if (eflag_atom) {
    memoryKK->destroy_kokkos(k_eatom, eatom);
    memoryKK->create_kokkos(k_eatom, eatom, maxeatom, "pair:eatom");
    d_eatom = k_eatom.template view<DeviceType>();
  }

  atomKK->sync(execution_space, datamask_read);
  atomKK->modified(execution_space, datamask_modify);

  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  if (nall == 0) {
    check_all(true, "");
    return;
  }
  // as the non-Kokkos style: energies_periodic() where every ghost is an image of a local
  // atom (owners found by atom ID on the host: the tags are synced there), else the halo
  // path or forward()
  if (periodic_method) atomKK->sync(Host, TAG_MASK);
  const Path path = choose_path(nlocal, nall);
  const int64_t nedge = build_edges_kokkos(nall, path == Path::FORWARD && ghost_graph);

  grow(d_species, nall, "torchscript/kk:species");
  auto species = d_species;
  auto t2s = d_type2species;
  auto type = atomKK->k_type.template view<DeviceType>();
  Kokkos::parallel_for(
      Kokkos::RangePolicy<DeviceType>(0, nall),
      KOKKOS_LAMBDA(const int i) { species(i) = t2s(type(i)); });
  // LibTorch reads the views next (on a GPU, on its own stream)
  Kokkos::fence();

  // tensors on the views' memory, no copies; x may be padded or of either layout: its strides
  auto x = atomKK->k_x.template view<DeviceType>();
  // the model contract is float64: a LAMMPS built with single-precision Kokkos positions
  // needs a copy, which this style does not make
  static_assert(std::is_same<typename decltype(x)::non_const_value_type, double>::value,
                "pair_style torchscript/kk needs double-precision Kokkos positions");
  auto on = torch::TensorOptions().device(device);
  torch::Tensor pos = torch::from_blob(x.data(), {nall, 3},
                                       {(int64_t) x.stride(0), (int64_t) x.stride(1)},
                                       on.dtype(torch::kFloat64));
  torch::Tensor species_t = torch::from_blob(d_species.data(), {nall}, on.dtype(torch::kInt64));
  torch::Tensor edges = torch::from_blob(d_edges.data(), {2, nedge}, on.dtype(torch::kInt64));

  // the one model call shared with pair_style torchscript; its .item() calls have waited for
  // LibTorch's stream, so Kokkos may read the results right after
  torch::Tensor image_of;
  if (path == Path::PERIODIC) image_of = image_buffer.narrow(0, 0, nall).to(device);
  ModelOutput out = path == Path::HALO
      ? evaluate_halo(pos, species_t, edges, nlocal, eflag_atom)
      : evaluate(pos, species_t, edges, nlocal, eflag_atom, image_of);
  check_all(out.ok, out.message);
  accumulate_kokkos(out, nlocal, nall);
}

/* ----------------------------------------------------------------------
   The halo path's node states live in a host tensor (copied from and to the model's device
   by evaluate_halo()), packed by the base class' host functions: CommKokkos takes LAMMPS'
   classic pair communication for a pair that runs on the host, so this style says so for
   the length of the call.
------------------------------------------------------------------------- */

template <class DeviceType> void PairTorchScriptKokkos<DeviceType>::communicate_states(bool reverse)
{
  const ExecutionSpace space = execution_space;
  execution_space = Host;
  PairTorchScript::communicate_states(reverse);
  execution_space = space;
}

/* ----------------------------------------------------------------------
   Edges from the Kokkos full list: the neighbours within the cutoff and their count per
   centre, an exclusive scan over atom indices (so the edges come sorted by centre), a copy
   into place. Centres are the list's atoms: local atoms, plus the
   ghosts for message passing.
------------------------------------------------------------------------- */

template <class DeviceType>
int64_t PairTorchScriptKokkos<DeviceType>::build_edges_kokkos(int nall, bool ghost_centres)
{
  auto k_list = static_cast<NeighListKokkos<DeviceType> *>(list);
  auto d_ilist = k_list->d_ilist;
  auto d_numneigh = k_list->d_numneigh;
  auto d_neighbors = k_list->d_neighbors;
  const int ncentre = list->inum + (ghost_centres ? list->gnum : 0);
  auto x = atomKK->k_x.template view<DeviceType>();
  const double cutsq_model = cutoff * cutoff;

  // one host thread: the short list of pair_style torchscript (the two passes below let
  // threads write in order without locks; alone, one thread only pays for them)
  if constexpr (std::is_same<typename DeviceType::memory_space, Kokkos::HostSpace>::value) {
    if (typename DeviceType::execution_space().concurrency() == 1 && d_neighbors.stride(1) == 1 &&
        x.stride(1) == 1 && x.stride(0) == 3) {
      const auto xyz = (const double(*)[3]) x.data();
      if (short_list.stale(xyz, nall, ncentre, cutoff, neighbor->ncalls))
        short_list.rebuild(
            ncentre, [&](int ii) { return (int) d_ilist(ii); },
            [&](int i) { return (int) d_numneigh(i); },
            [&](int i) { return (const int *) &d_neighbors(i, 0); }, xyz, nall, cutoff,
            neighbor->ncalls);
      grow(d_edges, 2 * short_list.max_edges(), "torchscript/kk:edges");
      return short_list.edges(xyz, d_edges.data());
    }
  }

  grow(d_count, nall, "torchscript/kk:count");
  grow(d_offset, nall + 1, "torchscript/kk:offset");
  auto count = d_count;
  auto offset = d_offset;
  // atoms that are not centres have no edges
  Kokkos::deep_copy(Kokkos::subview(count, std::make_pair(0, nall)), (int64_t) 0);

  // pass 1: the neighbours within the cutoff, kept in the centre's row of d_kept (distances
  // are computed once), and their count
  const int maxneigh = (int) d_neighbors.extent(1);
  if ((int) d_kept.extent(0) < ncentre || (int) d_kept.extent(1) < maxneigh)
    d_kept = Kokkos::View<int **, DeviceType>(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string("torchscript/kk:kept")),
        ncentre + ncentre / 4 + 16, maxneigh);
  auto kept = d_kept;
  Kokkos::parallel_for(
      Kokkos::RangePolicy<DeviceType>(0, ncentre), KOKKOS_LAMBDA(const int ii) {
        const int i = d_ilist(ii);
        const double xi = x(i, 0), yi = x(i, 1), zi = x(i, 2);
        const int jnum = d_numneigh(i);
        int n = 0;
        for (int jj = 0; jj < jnum; jj++) {
          const int j = d_neighbors(i, jj) & NEIGHMASK;
          const double dx = x(j, 0) - xi, dy = x(j, 1) - yi, dz = x(j, 2) - zi;
          // branch-free, as in pair_style torchscript: about half of the listed
          // neighbours are kept, so a branch would be mispredicted every other time
          kept(ii, n) = j;
          n += (dx * dx + dy * dy + dz * dz < cutsq_model);
        }
        count(i) = n;
      });

  // start of each centre's edges: an exclusive scan over atom indices (sorted by centre)
  Kokkos::parallel_scan(
      Kokkos::RangePolicy<DeviceType>(0, nall),
      KOKKOS_LAMBDA(const int i, int64_t &partial, const bool final) {
        const int64_t c = count(i);
        if (final) offset(i) = partial;
        partial += c;
        if (final && i == nall - 1) offset(nall) = partial;
      });
  int64_t nedge = 0;
  Kokkos::deep_copy(nedge, Kokkos::subview(offset, nall));

  // pass 2: copy into place
  grow(d_edges, 2 * nedge, "torchscript/kk:edges");
  auto edges = d_edges;
  Kokkos::parallel_for(
      Kokkos::RangePolicy<DeviceType>(0, ncentre), KOKKOS_LAMBDA(const int ii) {
        const int i = d_ilist(ii);
        const int64_t at = offset(i);
        const int n = (int) count(i);
        for (int k = 0; k < n; k++) {
          edges(at + k) = i;
          edges(nedge + at + k) = kept(ii, k);
        }
      });
  return nedge;
}

/* ----------------------------------------------------------------------
   Forces onto local and ghost atoms (ghost forces reach their owners by Kokkos reverse
   communication), energies, and the virial W_ab = sum_i r_ia f_ib over local and ghost atoms.
   out.forces [nall,3] and out.energies [nlocal] are contiguous on the views' device.
------------------------------------------------------------------------- */

template <class DeviceType>
void PairTorchScriptKokkos<DeviceType>::accumulate_kokkos(const ModelOutput &out, int nlocal,
                                                          int nall)
{
  typedef Kokkos::View<const double *[3], Kokkos::LayoutRight, DeviceType,
                       Kokkos::MemoryTraits<Kokkos::Unmanaged>>
      ForceView;
  typedef Kokkos::View<const double *, DeviceType, Kokkos::MemoryTraits<Kokkos::Unmanaged>>
      EnergyView;
  ForceView fm(out.forces.data_ptr<double>(), nall);
  auto f = atomKK->k_f.template view<DeviceType>();
  auto x = atomKK->k_x.template view<DeviceType>();
  static_assert(std::is_same<typename decltype(f)::non_const_value_type, double>::value,
                "pair_style torchscript/kk needs double-precision Kokkos forces");

  Kokkos::parallel_for(
      Kokkos::RangePolicy<DeviceType>(0, nall), KOKKOS_LAMBDA(const int i) {
        f(i, 0) += fm(i, 0);
        f(i, 1) += fm(i, 1);
        f(i, 2) += fm(i, 2);
      });

  if (eflag_global) eng_vdwl += out.energy;
  if (eflag_atom) {
    EnergyView ea(out.energies.data_ptr<double>(), nlocal);
    auto eatom_v = d_eatom;
    Kokkos::parallel_for(
        Kokkos::RangePolicy<DeviceType>(0, nlocal),
        KOKKOS_LAMBDA(const int i) { eatom_v(i) += ea(i); });
    k_eatom.template modify<DeviceType>();
    k_eatom.sync_host();
  }
  if (vflag_global) {
    // LAMMPS' EV_FLOAT as the reduction type: its join operators match the Kokkos version
    // LAMMPS was built with (volatile for Kokkos 3, plain for Kokkos 4)
    EV_FLOAT ev;
    Kokkos::parallel_reduce(
        Kokkos::RangePolicy<DeviceType>(0, nall),
        KOKKOS_LAMBDA(const int i, EV_FLOAT &acc) {
          acc.v[0] += x(i, 0) * fm(i, 0);
          acc.v[1] += x(i, 1) * fm(i, 1);
          acc.v[2] += x(i, 2) * fm(i, 2);
          acc.v[3] += x(i, 0) * fm(i, 1);
          acc.v[4] += x(i, 0) * fm(i, 2);
          acc.v[5] += x(i, 1) * fm(i, 2);
        },
        ev);
    for (int k = 0; k < 6; k++) virial[k] += ev.v[k];
  }
  // out's tensors are freed on return: the kernels above must be done with them
  Kokkos::fence();
}

namespace LAMMPS_NS {
template class PairTorchScriptKokkos<LMPDeviceType>;
#ifdef LMP_KOKKOS_GPU
template class PairTorchScriptKokkos<LMPHostType>;
#endif
}    // namespace LAMMPS_NS
