"""Model cards: the JSON and Markdown files next to an exported model (``X.pt`` ->
``X.card.json`` and ``X.card.md``): what the model is, what it was trained on, its test
metrics and the command that made it."""
from __future__ import annotations

import json
from pathlib import Path

from lammps_adv.core.errors import PotentialError
from lammps_adv.core.specs import model_file, parse
from lammps_adv.io.resources import shipped_model


def card_paths(out: str | Path) -> tuple[Path, Path]:
    out = Path(out)
    return out.with_name(out.stem + ".card.json"), out.with_name(out.stem + ".card.md")


def read_model_card(model: str | Path) -> dict | None:
    """The card next to the model file ``model`` (a dict), or None when it has none."""
    js = card_paths(model)[0]
    return json.loads(js.read_text()) if js.is_file() else None


def card_of_spec(spec: str) -> tuple[Path | None, dict | None]:
    """(card path, card) of the TorchScript model a spec names (a shipped model by its bare
    name too); (None, None) for any other spec, a spec that is no spec, or a model without
    a card."""
    try:
        model = parse(str(spec))
        if model.kind != "torchscript":
            return None, None
        path = model_file(model, shipped_model)
    except PotentialError:
        return None, None
    card = read_model_card(path)
    return (card_paths(path)[0] if card is not None else None), card


def card_closest_pairs(card: dict | None) -> dict:
    """{species pair ("O-Si"): closest distance (A) in the training split} a card records
    (training_data.closest_pair_A); {} for cards written before it was recorded."""
    pairs = ((card or {}).get("training_data") or {}).get("closest_pair_A") or {}
    return {str(p): float(d) for p, d in pairs.items()}


def write_model_card(out: str | Path, card: dict) -> tuple[Path, Path]:
    js, md = card_paths(out)
    js.write_text(json.dumps(card, indent=1) + "\n")
    md.write_text(card_markdown(card))
    return js, md


def optimizer_words(settings: dict) -> str:
    """'Adam', or 'AdamW (weight decay W)' for a training with a weight decay."""
    wd = settings.get("weight_decay") or 0
    return f"AdamW (weight decay {wd:g})," if wd > 0 else "Adam"


def baseline_words(params: dict | None) -> str:
    """The repulsive baseline of a model (hyper-parameter ``repulsion``) in words."""
    if not params or params.get("form") == "none":
        return ("none: the network alone, nothing stops a pair below the training data's "
                "closest approach from collapsing")
    w = params["switch_width"]
    walls = "; ".join(f"{p} zero above {r:.4f} A, full below {r * (1 - w):.4f} A"
                      for p, r in params["r_outer_A"].items())
    return (f"ZBL screened Coulomb repulsion switched on smoothly (C2) below each species "
            f"pair's closest approach in the training data, zero on every training "
            f"configuration ({walls})")


def card_markdown(card: dict) -> str:
    m, t, st = card["model"], card["training_data"], card["settings"]
    lines = [f"# Model card: {card['name']}", "",
             f"- file: `{card['file']}` ({card['size_bytes']} bytes), "
             f"sha256 `{card['sha256']}`",
             f"- model: {m['kind']}, {m['n_parameters']} parameters, species "
             f"{', '.join(card['contract']['species'])}, cutoff {card['contract']['cutoff']} A, "
             f"receptive field {card['contract']['receptive_field']} A",
             f"- hyper-parameters: `{json.dumps({k: v for k, v in m.items() if k not in ('radial_etas', 'angular_etas', 'lambdas', 'zetas', 'repulsion')})}`",
             f"- repulsive baseline: {baseline_words(m.get('repulsion'))}",
             f"- trained on: {st['trained_on']} (force weight {st['force_weight']}), "
             f"reference `{t['reference']}`",
             f"- data: `{t['path']}` (sha256 `{t['sha256'][:16]}...`), {t['n_configs']} "
             f"configurations, splits {t['splits']}, labels {', '.join(t['labels'])}",
             *(["- closest pair in the training split (A): " + ", ".join(
                 f"{p} {d:g}" for p, d in t["closest_pair_A"].items())]
               if t.get("closest_pair_A") else []),
             f"- settings: {optimizer_words(st)} lr {st['lr']}, schedule {st['schedule']}, "
             f"batch {st['batch_size']}, epochs {st['epochs']}, patience {st['patience']}, "
             f"seed {st['seed']}",
             *([f"- started from: `{st['warm_start']}`"
                + (" (another reference: its energy shift refitted to this data first)"
                   if st.get("transfer") else "")] if st.get("warm_start") else []),
             f"- run: {card['metrics']['epochs_run']} epochs (stopped: "
             f"{card['metrics']['stopped']}), best epoch {card['metrics']['best_epoch']}, "
             f"{card['performance']['training_time_s']} s, "
             f"{card['performance']['throughput_configs_per_s']} configurations/s", "",
             "## Test metrics", "",
             "| split | configs | energy RMSE (meV/atom) | energy MAE (meV/atom) "
             "| force RMSE (meV/A) | force MAE (meV/A) |",
             "|---|---|---|---|---|---|"]
    for name in ("test", "validation"):
        x = card["metrics"][name]
        lines.append(f"| {name} | {x['n_configs']} | {x['energy_rmse_meV_per_atom']:.2f} | "
                     f"{x['energy_mae_meV_per_atom']:.2f} | "
                     f"{x.get('force_rmse_meV_per_A', float('nan')):.1f} | "
                     f"{x.get('force_mae_meV_per_A', float('nan')):.1f} |")
    lines += ["", f"Created {card['created']} by lammps-adv {card['software']['lammps_adv']}, "
              f"torch {card['software']['torch']}.", f"Command: `{card['command']}`", ""]
    return "\n".join(lines)
