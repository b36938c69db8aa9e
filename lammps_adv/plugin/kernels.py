"""The fused model kernels, ``torch.ops.lammps_adv.*`` (C++, kernels/ here).

Built with the plugin into ``lib/liblammps_adv_kernels.so``. The plugin links that library, so
LAMMPS has the operators as soon as it loads the plugin; Python loads it here, before a model
that calls them is scripted or loaded. Operators:

- ``bp_features(vec, offsets, nbr_species, radial_etas, angular_etas, lambdas, zetas,
  pair_index, pair_weight, cutoff)``: Behler-Parrinello G2/G4 features of edges sorted by
  centre, with their analytic first derivatives (CPU, torch's thread pool).
- ``bp_energies(vec, offsets, nbr_species, centre_species, <the same parameters>,
  feature_mean, feature_std, linear, activation, energy_scale, energy_shift)``: the BP
  network's per-atom energies for inference, features, MLPs and gradient pass per centre in
  one scan; first derivatives with respect to the edge vectors only (CPU).
- ``bp_energies_from_positions(positions, nbr, offsets, nbr_species, centre_species, <the
  same parameters and network>)``: the same for edges (centre i, neighbour nbr[e]) sorted by
  centre, the vectors taken from the positions and the gradient added to the positions in one
  pass (what the BP model runs in evaluation mode).
- ``edge_r2(positions, ctr, nbr)``: the squared length of every edge, in one pass (the BP
  model's inference path checks its edges with it).
- ``bks_dsf_pairs(vec, pair_type, params, alpha, e_shift, f_shift, sqrt_pi, lammps_erfc,
  erfc)``: the BKS-DSF energy of each edge (half, the centre's share) with its first
  derivative, in one pass over the edges (CPU).
"""
from pathlib import Path

from lammps_adv.core.errors import PluginError

KERNELS_FILE = Path(__file__).resolve().parent / "lib" / "liblammps_adv_kernels.so"
_loaded = False


def load_kernels() -> None:
    """Register the operators with torch (once per process); PluginError if not built."""
    global _loaded
    if _loaded:
        return
    import torch
    if not KERNELS_FILE.is_file():
        raise PluginError(f"the fused model kernels are not built: {KERNELS_FILE} does not exist; "
                          "build them with `pip install --no-build-isolation -e .` (or `make env`)")
    try:
        torch.ops.load_library(str(KERNELS_FILE))
    except OSError as exc:
        raise PluginError(f"{KERNELS_FILE} cannot be loaded: {exc}. Rebuild it against the "
                          "installed torch with `pip install --no-build-isolation -e .`") from exc
    _loaded = True
