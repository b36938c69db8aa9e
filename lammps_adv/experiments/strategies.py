"""How each remedy of ``lammps-adv mitigate`` picks the configurations it spends its
reference labels on. One small function per strategy, all with the same signature:

    pick(source, n, rng) -> [(positions, cell, names, label)]     exactly n configurations

``source`` (a ``Sources``) holds what a strategy may look at: the current model and, for
``uncertainty``, a committee (``lammps_adv.calculators`` objects), the labelled training
configurations to start from, and a reserve of unlabelled thermal-MD configurations of the
reference. Picking never calls the reference: every strategy spends exactly n labels per
round, when ``mitigate`` labels what was picked.

  baseline            nothing (no new labels)
  more-md             the next n reserve configurations (the control: more data of the
                      same kind)
  more-md+forces      the same picks; the model is then trained on energies and forces
                      (remedy 4; ``forces`` is its older name)
  adversarial         a training configuration displaced along A = 2 dE (F_app - F_acc) of
                      the current model (reference labels of the start are already known)
  adversarial+forces  the same picks, trained on energies and forces
  step-f-app          ... along the model's own force F_app
  step-f-acc          ... along the reference force F_acc
  uncertainty         projected gradient ascent on the committee's energy variance, from a
                      training configuration (no reference needed to pick)

Without replacement: the starts of one strategy run are taken in the order of one seeded
permutation of the start configurations (``mitigate`` appends the run's own trained labels
after each round: used only once the base set's are, each once too), the reserve in the
order of another (``order``), each at most once over all rounds; a reserve configuration
whose hash is in ``seen`` (the configurations already in the training set or labelled) is
skipped. Running out is an error naming the set to enlarge.

Displacements use the probe's convention: distortion epsilon (A^2), "total" over the cell
or "per-atom". A step that would bring two atoms closer than ``CORE_DISTANCE``
(1.2 A, well inside the Si-O bond) is halved until it does not (at most 10 times; the label
names the factor): a direction concentrated on one atom can otherwise push it into a
neighbour, and a label of keV per atom from inside the repulsive core wrecks the retrained
model (seen at full scale before this guard).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lammps_adv.core import adversarial
from lammps_adv.core.alignment import NONE, Alignment
from lammps_adv.core.configuration import config_key
from lammps_adv.lammps.structures import min_pair_distance

CORE_DISTANCE = 1.2          # A: a step bringing two atoms closer is halved (well inside Si-O)

STRATEGIES = ("baseline", "more-md", "more-md+forces", "adversarial", "adversarial+forces",
              "step-f-app", "step-f-acc", "uncertainty")
# strategies trained on energies and forces -> the energy-only strategy whose picks they share
FORCE_TRAINED = {"more-md+forces": "more-md", "adversarial+forces": "adversarial"}
ALIASES = {"forces": "more-md+forces"}      # the older name


def canonical(names) -> tuple:
    """Strategy names with aliases resolved, each once, in the order of ``STRATEGIES`` (a
    strategy trained on forces then runs after the one whose picks it shares)."""
    names = [ALIASES.get(n, n) for n in names]
    unknown = sorted(set(names) - set(STRATEGIES))
    if unknown:
        raise ValueError(f"unknown strategies {', '.join(unknown)}; known: {', '.join(STRATEGIES)}")
    return tuple(n for n in STRATEGIES if n in names)


@dataclass
class Sources:
    model: object                                  # Calculator of the current model
    starts: list                                   # dicts: positions, cell, names, energy, forces, source
    reserve: list                                  # (positions, cell, names, source), unlabelled
    committee: list = field(default_factory=list)  # more Calculators (uncertainty)
    epsilon: float = 0.005                         # A^2
    distortion: str = "per-atom"                   # total | per-atom
    ascent_steps: int = 3                          # uncertainty
    taken: int = 0                                 # reserve positions used so far
    alignment: Alignment = NONE                    # of E_app in A (adversarial strategy)
    order: np.ndarray | None = None                # reserve order (None: as given)
    start_order: np.ndarray | None = None          # start order (None: drawn at first use)
    starts_taken: int = 0                          # starts used so far
    seen: set = field(default_factory=set)         # config_key of configurations not to pick

    def scale(self, natoms: int) -> float:
        return adversarial.total_distortion(self.epsilon, natoms, self.distortion)

    def take_starts(self, n: int, rng) -> list:
        """The next n start configurations of this run, none twice: the starts given at the
        first call in a seeded order, then any appended since (the run's own labels, for a
        base set smaller than the budget) in the order appended."""
        if self.start_order is None:
            self.start_order = rng.permutation(len(self.starts))
        if len(self.start_order) < len(self.starts):
            self.start_order = np.r_[self.start_order,
                                     np.arange(len(self.start_order), len(self.starts))]
        if self.starts_taken + n > len(self.start_order):
            raise ValueError(f"the {len(self.start_order)} start configurations are exhausted: "
                             f"{n} more asked, {len(self.start_order) - self.starts_taken} left "
                             "(a larger base training set, or a smaller budget)")
        picked = self.start_order[self.starts_taken:self.starts_taken + n]
        self.starts_taken += n
        return [self.starts[int(k)] for k in picked]


def baseline(src: Sources, n: int, rng) -> list:
    return []


def more_md(src: Sources, n: int, rng) -> list:
    order = np.arange(len(src.reserve)) if src.order is None else src.order
    out = []
    while len(out) < n:
        if src.taken >= len(order):
            raise ValueError(f"the reserve of thermal configurations is exhausted: {n} asked, "
                             f"{len(out)} found (generate a larger pool)")
        c = src.reserve[int(order[src.taken])]
        src.taken += 1
        if key_of(c) not in src.seen:
            out.append(c)
    return out


def key_of(c) -> str:
    """config_key of a (positions, cell, names, ...) configuration or a label dict."""
    if isinstance(c, dict):
        return config_key(list(c["names"]), c["positions"], c["cell"])
    return config_key(list(c[2]), c[0], c[1])


def _displaced(src: Sources, n: int, rng, direction, tag: str) -> list:
    """The next n start configurations moved along direction(start)."""
    out = []
    for s in src.take_starts(n, rng):
        pos = np.asarray(s["positions"], dtype=np.float64)
        d = direction(s).reshape(pos.shape)
        x, factor = outside_core(pos, adversarial.displace(pos, d, src.scale(len(pos))),
                                 s["cell"])
        out.append((x, s["cell"], s["names"], f"{s['source']}+{tag}{_factor_tag(factor)}"))
    return out


def outside_core(pos, x, cell, core: float = CORE_DISTANCE, halvings: int = 10):
    """The displaced positions x, with the step x - pos halved until no two atoms are closer
    than ``core`` (A) or the start's own smallest distance, whichever is smaller; returns
    (positions, factor applied to the step)."""
    floor = min(core, min_pair_distance(pos, cell))
    factor = 1.0
    for _ in range(halvings):
        if min_pair_distance(x, cell) >= floor:
            break
        factor *= 0.5
        x = pos + 0.5 * (x - pos)
    return x, factor


def _factor_tag(factor: float) -> str:
    return "" if factor == 1.0 else f"(step x{factor:g}: core)"


def _model(src: Sources, s: dict):
    return src.model.evaluate(s["positions"], s["cell"], symbols=s["names"],
                              label=f"{s['source']} (picking)")


def adversarial_step(src: Sources, n: int, rng) -> list:
    def a(s):
        e_app, f_app = _model(src, s)
        e_app = e_app + src.alignment.offset(s["names"])
        return adversarial.adversarial_direction(e_app, s["energy"], f_app, s["forces"])
    return _displaced(src, n, rng, a, "A")


def step_f_app(src: Sources, n: int, rng) -> list:
    return _displaced(src, n, rng, lambda s: _model(src, s)[1], "F_app")


def step_f_acc(src: Sources, n: int, rng) -> list:
    return _displaced(src, n, rng, lambda s: np.asarray(s["forces"]), "F_acc")


def committee_variance_direction(energies, forces) -> np.ndarray:
    """Gradient of the committee's energy variance (1/M) sum_m (E_m - <E>)^2 with respect to
    the positions: -(2/M) sum_m (E_m - <E>)(F_m - <F>) (eV^2/A)."""
    e = np.asarray(energies, dtype=np.float64)
    f = np.asarray(forces, dtype=np.float64)
    de, df = e - e.mean(), f - f.mean(axis=0)
    return -2.0 / len(e) * np.tensordot(de, df, axes=1)


def uncertainty(src: Sources, n: int, rng) -> list:
    models = [src.model] + list(src.committee)
    if len(models) < 2:
        raise ValueError("the uncertainty strategy needs a committee of at least 2 models")
    out = []
    for s in src.take_starts(n, rng):
        pos = np.asarray(s["positions"], dtype=np.float64)

        def evaluate(x, step=None):
            res = [m.evaluate(x, s["cell"], symbols=s["names"],
                              label=f"{s['source']} (committee)") for m in models]
            return [r[0] for r in res], [r[1] for r in res]

        x, _, _ = adversarial.ascend(evaluate, lambda st: committee_variance_direction(*st),
                                     pos, evaluate(pos), src.scale(len(pos)), src.ascent_steps)
        x, factor = outside_core(pos, x, s["cell"])
        out.append((x, s["cell"], s["names"], f"{s['source']}+committee{_factor_tag(factor)}"))
    return out


PICK = {"baseline": baseline, "more-md": more_md, "more-md+forces": more_md,
        "adversarial": adversarial_step, "adversarial+forces": adversarial_step,
        "step-f-app": step_f_app, "step-f-acc": step_f_acc, "uncertainty": uncertainty}


def pick(strategy: str, src: Sources, n: int, rng) -> list:
    """Exactly n configurations for ``strategy`` (none for baseline)."""
    strategy = ALIASES.get(strategy, strategy)
    if strategy not in PICK:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    out = PICK[strategy](src, n, rng)
    assert strategy == "baseline" or len(out) == n, (strategy, len(out), n)
    return out
