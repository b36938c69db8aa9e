"""A lammps-adv Behler-Parrinello file in n2p2's input format, for the peer benchmark
(bench/bench_n2p2.py): the same symmetry functions, scaling and networks, so that n2p2's
libnnp computes the same energies and forces (without the ZBL baseline, which n2p2 has not).

The mapping (n2p2's source, libnnp, checked by the benchmark's agreement figures):

- radial G2 exp(-eta r^2) fc(r)          -> n2p2 type 2, rs = 0
- angular G4 (r_jk inside the cutoff)    -> n2p2 type 3 ("narrow"), rs = 0; n2p2 sums each
  unordered neighbour pair once, lammps-adv (as JAX MD) twice when both neighbours are of one
  species, so there n2p2's G is half of ours: its mean and sigma are halved, which leaves the
  network input (G - mean) / sigma unchanged
- fc(r) = 0.5 (cos(pi r / r_c) + 1)       -> cutoff_type 1 with alpha 0
- feature standardisation (G - mean)/std -> scaling.data + scale_symmetry_functions_sigma
  (scale_min_short 0, scale_max_short 1)
- n2p2 orders each element's functions by (type, r_c, eta, rs, zeta, lambda, neighbour
  elements by atomic number); the first layer's weight columns are permuted to that order
- energy scale and per-species shift   -> folded into the output layer's weights and bias
- weights.ZZZ.data: per layer, for each input neuron the weights to every output neuron
  (output index fastest), then the layer's biases

Units: eV and Angstrom in both codes.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers as ATOMIC_NUMBER

N2P2_ACTIVATION = {"tanh": "t", "softplus": "p"}


def _functions(model, hp: dict) -> list:
    """One entry per lammps-adv feature, in lammps-adv's order: (kind, neighbour species,
    eta, lambda, zeta). Radial: for each neighbour species the etas; angular: for each
    species pair a <= b the (eta, lambda, zeta) list."""
    species = list(model.species)
    out = []
    for a in species:
        out += [("rad", (a,), float(eta), 0.0, 0.0) for eta in hp["radial_etas"]]
    for i, a in enumerate(species):
        for b in species[i:]:
            out += [("ang", (a, b), float(e), float(lam), float(z))
                    for e, lam, z in zip(hp["angular_etas"], hp["lambdas"], hp["zetas"])]
    return out


def n2p2_order(functions: list, elements: list, cutoff: float) -> list:
    """The n2p2 input index of each function: n2p2 sorts an element's functions by
    (type, r_c, eta, rs, zeta, lambda, neighbour elements), elements by atomic number."""
    eidx = {s: i for i, s in enumerate(sorted(elements, key=ATOMIC_NUMBER.__getitem__))}

    def key(k):
        kind, nbrs, eta, lam, zeta = functions[k]
        if kind == "rad":
            return (2, cutoff, eta, 0.0, 0.0, 0.0, eidx[nbrs[0]], 0)
        a, b = sorted(eidx[s] for s in nbrs)
        return (3, cutoff, eta, 0.0, zeta, lam, a, b)
    ranked = sorted(range(len(functions)), key=key)
    return ranked        # ranked[p] = the lammps-adv feature at n2p2 input p


def write_n2p2(model_file: str | Path, folder: str | Path) -> Path:
    """input.nn, scaling.data and weights.ZZZ.data for the BP model in ``model_file``, into
    ``folder`` (made if missing); returns the folder. ValueError for what n2p2 cannot
    express (an activation it lacks, a species that is no element)."""
    from lammps_adv.models.contract import load
    model = load(model_file)
    hp = json.loads(model.hparams)
    if hp.get("kind") != "bp":
        raise ValueError(f"{model_file} is not a Behler-Parrinello model (kind {hp.get('kind')})")
    if hp["activation"] not in N2P2_ACTIVATION:
        raise ValueError(f"activation {hp['activation']} has no n2p2 counterpart")
    species = list(model.species)
    missing = [s for s in species if s not in ATOMIC_NUMBER]
    if missing:
        raise ValueError(f"species {missing} are no chemical elements: n2p2 names its "
                         "weight files by atomic number")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rc = float(model.cutoff)
    functions = _functions(model, hp)
    ranked = n2p2_order(functions, species, rc)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    mean, std = state["feature_mean"], state["feature_std"]
    scale, shift = float(state["energy_scale"]), state["energy_shift"]
    # n2p2 counts a same-species neighbour pair once, lammps-adv twice
    half = np.array([0.5 if f[0] == "ang" and f[1][0] == f[1][1] else 1.0 for f in functions])

    elements = sorted(species, key=ATOMIC_NUMBER.__getitem__)
    act = N2P2_ACTIVATION[hp["activation"]]
    hidden = [int(h) for h in hp["hidden"]]
    lines = ["# a lammps-adv BP model in n2p2's format (bench/n2p2_model.py)",
             f"number_of_elements {len(elements)}", "elements " + " ".join(elements),
             "cutoff_type 1 0.0", "scale_symmetry_functions_sigma", "scale_min_short 0.0",
             "scale_max_short 1.0", f"global_hidden_layers_short {len(hidden)}",
             "global_nodes_short " + " ".join(map(str, hidden)),
             "global_activation_short " + " ".join([act] * len(hidden) + ["l"])]
    for centre in elements:
        for kind, nbrs, eta, lam, zeta in functions:
            if kind == "rad":
                lines.append(f"symfunction_short {centre} 2 {nbrs[0]} {eta!r} 0.0 {rc!r}")
            else:
                lines.append(f"symfunction_short {centre} 3 {nbrs[0]} {nbrs[1]} {eta!r} "
                             f"{lam!r} {zeta!r} {rc!r} 0.0")
    (folder / "input.nn").write_text("\n".join(lines) + "\n")

    rows = ["# element sf min max mean sigma (lammps-adv feature standardisation)"]
    for e, centre in enumerate(elements, start=1):
        s = species.index(centre)
        for p, f in enumerate(ranked, start=1):
            m, sd = mean[s, f] * half[f], std[s, f] * half[f]
            m, sd = float(m), float(sd)
            rows.append(f"{e} {p} {m - 10 * sd!r} {m + 10 * sd!r} {m!r} {sd!r}")
    (folder / "scaling.data").write_text("\n".join(rows) + "\n")

    for centre in elements:
        s = species.index(centre)
        layers = [(state[k], state[k.replace("weight", "bias")])
                  for k in sorted((k for k in state if k.startswith(f"mlps.{s}.")
                                   and k.endswith("weight")),
                                  key=lambda k: int(k.split(".")[2]))]
        w0, b0 = layers[0]
        layers[0] = (w0[:, ranked], b0)
        wl, bl = layers[-1]
        layers[-1] = (wl * scale, bl * scale + shift[s])
        values = []
        for w, b in layers:
            values += list(w.T.reshape(-1)) + list(b)     # output neuron fastest, then biases
        z = ATOMIC_NUMBER[centre]
        (folder / f"weights.{z:03d}.data").write_text(
            f"# {centre}: lammps-adv BP network (energy scale and shift folded in)\n"
            + "\n".join(repr(float(v)) for v in values) + "\n")
    return folder


def write_structure(atoms, path: str | Path) -> Path:
    """One periodic structure in n2p2's input.data format (energies and forces 0: unused)."""
    lines = ["begin", "comment lammps-adv benchmark glass"]
    # repr of a Python float: the shortest text that reads back as the same double
    lines += ["lattice " + " ".join(repr(float(v)) for v in row) for row in np.asarray(atoms.cell)]
    for xyz, s in zip(atoms.get_positions(), atoms.get_chemical_symbols()):
        lines.append("atom " + " ".join(repr(float(v)) for v in xyz) + f" {s} 0.0 0.0 0.0 0.0 0.0")
    lines += ["energy 0.0", "charge 0.0", "end"]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)
