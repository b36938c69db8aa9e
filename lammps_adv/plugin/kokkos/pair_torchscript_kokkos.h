/* pair_style torchscript/kk: the Kokkos twin of pair_style torchscript (lammps-adv).

   Same input and model contract as pair_style torchscript (pair_torchscript.h); picked by
   `-k on ... -sf kk` (or named torchscript/kk). Positions, species and edges stay in Kokkos
   views in the Kokkos memory space and reach the model as tensors made by from_blob on that
   memory (host for OpenMP/Serial, the CUDA device for Cuda): no host round trip. The model call
   and its contract checks are the base class' evaluate(), not a copy; edges are built from the
   Kokkos full neighbour list in Kokkos kernels (the neighbours within the cutoff and their
   count per centre, a scan, a copy into place), sorted by centre like the base class' edges; forces, per-atom energies and the virial go back through
   Kokkos kernels.

   The model runs on the device of the Kokkos views: the CPU for host backends, the view's GPU
   for Cuda (a CUDA build of LibTorch is then needed). Built only when the plugin is compiled
   against a LAMMPS with KOKKOS (LMP_KOKKOS); see docs/kokkos.md.
*/
#ifndef LMP_ADV_PAIR_TORCHSCRIPT_KOKKOS_H
#define LMP_ADV_PAIR_TORCHSCRIPT_KOKKOS_H

#include "pair_torchscript.h"

#include "kokkos_type.h"

#ifndef LAMMPS_ADV_KOKKOS_TRANSFORM_VIEWS
#define LAMMPS_ADV_KOKKOS_TRANSFORM_VIEWS 0
#endif

namespace LAMMPS_NS {

template <class DeviceType> class PairTorchScriptKokkos : public PairTorchScript {
 public:
  typedef DeviceType device_type;
  typedef ArrayTypes<DeviceType> AT;

  PairTorchScriptKokkos(class LAMMPS *);
  ~PairTorchScriptKokkos() override;

  void compute(int, int) override;
  void init_style() override;

 protected:
  void pick_device() override;
  void request_neighbors() override;
  // node states are a host tensor: through LAMMPS' host (classic) pair communication
  void communicate_states(bool reverse) override;

  // edges (centre, neighbour) within the model cutoff from the Kokkos neighbour list into
  // d_edges (sources, then destinations), sorted by centre; returns their number
  int64_t build_edges_kokkos(int nall, bool ghost_centres);
  // forces, per-atom energies and the virial of one model call into the Kokkos views
  void accumulate_kokkos(const ModelOutput &out, int nlocal, int nall);

  // reused between steps (grown, never shrunk)
  Kokkos::View<int64_t *, DeviceType> d_count;     // edges per centre (atom index)
  Kokkos::View<int64_t *, DeviceType> d_offset;    // start of each centre's edges, [nall+1]
  Kokkos::View<int64_t *, DeviceType> d_edges;     // [2*E]: sources then destinations
  Kokkos::View<int **, DeviceType> d_kept;         // per centre: neighbours within the cutoff
  Kokkos::View<int64_t *, DeviceType> d_species;
  Kokkos::View<int64_t *, DeviceType> d_type2species;

  // per-atom energies: a dual view until 2025; later LAMMPS keep Kokkos arrays in their own
  // precision (KK_ACC_FLOAT) beside the legacy double arrays, in "transform" views
  // (CMakeLists.txt reads which from kokkos_type.h)
#if LAMMPS_ADV_KOKKOS_TRANSFORM_VIEWS
  DAT::ttransform_kkacc_1d k_eatom;
  typename AT::t_kkacc_1d d_eatom;
#else
  DAT::tdual_efloat_1d k_eatom;
  typename AT::t_efloat_1d d_eatom;
#endif
};

}    // namespace LAMMPS_NS

#endif
