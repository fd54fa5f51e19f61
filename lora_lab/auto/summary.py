"""The run's result as one JSON document (what `--json` prints and the report shows): the plan,
each epoch's losses, every cell's scores, the shortlist, the recommendation and the per-prompt
influence map; under `--ab`, one such object per variant and their comparison."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..files.lora_files import run_file
from ..sweep.manifest import SweepManifest, load_manifest
from ..sweep.scoring import load_scores, shortlist
from .options import Variant, stage_name
from .state import AutoState

MEASURES = ("fidelity", "adherence", "diversity", "influence", "score")
SHORTLIST = 3
LEVEL = 0.01  # measures closer than this are called level in the A/B verdict


def _epoch_of(manifest: SweepManifest, lora: str | None) -> int | None:
    for row in manifest.rows:
        if row.lora == lora:
            return row.epoch
    return None


def cells(manifest: SweepManifest) -> list[dict[str, Any]]:
    out = []
    for cell in manifest.cells:
        scores = cell.scores or {}
        out.append({"epoch": _epoch_of(manifest, cell.lora), "weight": 0.0 if cell.weight is None else cell.weight,
                    "checkpoint": cell.checkpoint, "lora": cell.lora, "label": cell.label,
                    "scores": {k: scores.get(k) for k in MEASURES}, "gated": scores.get("gated")})
    return out


def _domain(domains: list[str], prompt: int) -> str:
    """"in" for a training caption, "out" for a showcase prompt (and any sweep without the record)."""
    return domains[prompt] if prompt < len(domains) else "out"


def influence_map(manifest: SweepManifest, domains: list[str]) -> dict[str, Any]:
    """Mean influence per prompt (rows) and LoRA cell (columns): where the LoRA acts, and where
    the base model takes over."""
    columns = [c for c in manifest.cells if c.lora is not None]
    rows = []
    for k, prompt in enumerate(manifest.prompts):
        values = []
        for cell in columns:
            found = [img.scores.get("influence") for img in cell.images
                     if img.prompt == k and img.scores and img.scores.get("influence") is not None]
            values.append(sum(found) / len(found) if found else None)
        rows.append({"prompt": prompt, "domain": _domain(domains, k), "values": values})
    return {"columns": [c.label for c in columns], "rows": rows}


def domain_means(manifest: SweepManifest, domains: list[str], cell_index: int, measure: str) -> dict[str, float | None]:
    """A cell's mean of one per-image measure over in-domain and out-of-domain prompts."""
    cell = manifest.cells[cell_index]
    out: dict[str, float | None] = {}
    for domain in ("in", "out"):
        found = [img.scores.get(measure) for img in cell.images
                 if img.scores and img.scores.get(measure) is not None
                 and _domain(domains, img.prompt) == domain]
        out[domain] = sum(found) / len(found) if found else None
    return out


def ranked_cells(manifest: SweepManifest, document: dict[str, Any], epochs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every scored, ungated LoRA cell, best first: by score, then (where scores tie) by the loss
    training measured for its epoch (validation, else stable), then the weight nearest 1."""
    loss = {e["epoch"]: e.get("val_loss") if e.get("val_loss") is not None else e.get("stable_loss") for e in epochs}

    def key(entry: dict[str, Any]) -> tuple[float, float, float, int]:
        value = loss.get(_epoch_of(manifest, entry["lora"]))
        return (-round(entry["score"], 9), float("inf") if value is None else value, abs(entry["weight"] - 1.0),
                entry["cell"])

    return sorted(shortlist(manifest, document, count=len(manifest.cells)), key=key)


def recommendation(manifest: SweepManifest, ranked: list[dict[str, Any]], epochs: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not ranked:
        return None
    top = ranked[0]
    tied = sum(1 for b in ranked if round(b["score"], 9) == round(top["score"], 9))
    cell = manifest.cells[top["cell"]]
    scores = cell.scores or {}
    file = next((Path(r.file) for r in manifest.rows if r.lora == top["lora"]), None)
    epoch = _epoch_of(manifest, top["lora"])
    if tied > 1:
        why = (f"{tied} of {len(ranked)} LoRA cells share the top score {top['score']:.3f}, so the scores cannot "
               f"separate them; of those, epoch {epoch} has the lowest loss training measured — judge them by eye "
               "in Review (H/M)")
    else:
        why = (f"highest score {top['score']:.3f} of {len(ranked)} LoRA cells (fidelity {scores.get('fidelity', 0):.2f}, "
               f"adherence {_num(scores.get('adherence'))}, influence {_num(scores.get('influence'))})")
    losses = [e for e in epochs if e.get("val_loss") is not None]
    if losses:
        lowest = min(losses, key=lambda e: e["val_loss"])
        if lowest["epoch"] == epoch:
            why += f"; its validation loss is the lowest of the run ({lowest['val_loss']:.4f})"
        else:
            why += f"; the lowest validation loss was at epoch {lowest['epoch']} ({lowest['val_loss']:.4f})"
    if len(ranked) > 1 and tied == 1:
        why += f"; runner-up <lora:{ranked[1]['lora']}:{ranked[1]['weight']:g}> at {ranked[1]['score']:.3f}"
    return {"file": str(file) if file else None, "lora": top["lora"], "weight": top["weight"], "epoch": epoch,
            "prompt_tag": f"<lora:{top['lora']}:{top['weight']:g}>", "why": why}


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def loss_curve(run_file: Path, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Train, validation and stable loss of every epoch: the run file has each epoch the last
    training run trained (after `start_epoch` when it continued an earlier one); the epoch files
    fill in the epochs before that."""
    from ..files.jsonfile import JsonFileError, read_json

    by_epoch = {e["epoch"]: {k: e.get(k) for k in ("epoch", "train_loss", "val_loss", "stable_loss")}
                for e in files if e.get("epoch") is not None}
    try:
        run = read_json(run_file)
        result, start = run["result"], int(run["config"].get("start_epoch") or 0)
        trained = result["epoch_losses"]
        for i, train_loss in enumerate(trained):
            epoch = start + i + 1
            val = result["val_losses"][i] if i < len(result["val_losses"]) else None
            stable = result["stable_losses"][i] if i < len(result["stable_losses"]) else None
            by_epoch[epoch] = {"epoch": epoch, "train_loss": train_loss, "val_loss": val, "stable_loss": stable}
    except (JsonFileError, OSError, KeyError, TypeError, ValueError):
        pass
    return [by_epoch[k] for k in sorted(by_epoch)]


def variant_summary(state: AutoState, variant: Variant) -> dict[str, Any]:
    out: dict[str, Any] = {"variant": variant.key, "lora": variant.lora_name}
    if state.done("plan"):
        planned = state.result("plan")
        out["plan"] = {**planned["plan"], "repeats": planned["repeats"], "folder": planned["folder"],
                       "settings": planned["configs"][variant.key]}
    training = state.stages.get(stage_name("training", variant))
    epochs = training.result.get("epochs", []) if training else []  # read from the files when training ended
    out["epochs"] = [{k: e[k] for k in ("epoch", "file", "train_loss", "val_loss", "stable_loss")} for e in epochs]
    if epochs:
        out["loss_curve"] = loss_curve(run_file(Path(epochs[0]["file"]).parent, variant.lora_name), epochs)
    sweep = state.stages.get(stage_name("sweep", variant))
    manifest = None
    if sweep is not None and sweep.result.get("manifest") and Path(sweep.result["manifest"]).is_file():
        manifest = load_manifest(sweep.result["manifest"])
    if manifest is None:
        out.update(cells=[], shortlist=[], recommendation=None)
        return out
    domains = manifest.parameters.get("lora_lab_auto", {}).get("domains", [])
    document = load_scores(manifest)
    ranked = ranked_cells(manifest, document, out["epochs"]) if document else []
    best = ranked[:SHORTLIST]
    out.update(manifest=str(manifest.path), cells=cells(manifest), shortlist=best,
               recommendation=recommendation(manifest, ranked, out["epochs"]),
               influence_map=influence_map(manifest, domains),
               prompts=[{"text": p, "domain": _domain(domains, k)} for k, p in enumerate(manifest.prompts)])
    if best:
        out["best_by_domain"] = {m: domain_means(manifest, domains, best[0]["cell"], m)
                                 for m in ("fidelity", "adherence", "influence")}
    return out


def compare(variants: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Captioned vs captionless, each at its best cell: adherence on prompts outside the training
    data, fidelity, influence — and the trade-off in words."""
    by_key = {v["variant"]: v for v in variants}
    cap, bare = by_key.get("captioned"), by_key.get("captionless")
    if not cap or not bare or not cap.get("best_by_domain") or not bare.get("best_by_domain"):
        return None

    def pick(v: dict[str, Any], measure: str, domain: str | None = None) -> float | None:
        if domain:
            return v["best_by_domain"][measure][domain]
        cell = v["cells"][v["shortlist"][0]["cell"]]
        return cell["scores"][measure]

    rows = {
        "adherence_out_of_domain": (pick(cap, "adherence", "out"), pick(bare, "adherence", "out")),
        "fidelity": (pick(cap, "fidelity"), pick(bare, "fidelity")),
        "influence": (pick(cap, "influence"), pick(bare, "influence")),
        "score": (pick(cap, "score"), pick(bare, "score")),
    }
    words = []
    score = rows["score"]
    for key, what, measure in (("adherence_out_of_domain", "follow{s} prompts outside the training data", "adherence"),
                               ("fidelity", "hold{s} the trained look", "fidelity")):
        a, b = rows[key]
        if a is None or b is None:
            continue
        if abs(a - b) < LEVEL:
            words.append(f"both {what.format(s='')} about equally ({measure} {a:.2f} vs {b:.2f})")
        else:
            better = "captioned" if a > b else "captionless"
            words.append(f"{better} {what.format(s='s')} better ({measure} {max(a, b):.2f} vs {min(a, b):.2f})")
    cap_score, bare_score = score[0] or 0.0, score[1] or 0.0
    overall = None if abs(cap_score - bare_score) < LEVEL else ("captioned" if cap_score > bare_score else "captionless")
    words.append(f"by the combined score, {overall} is ahead" if overall else
                 "the combined scores are level, so compare the two shortlists by eye")
    words.append("the guides' trade-off: captions let prompts steer the LoRA; without captions the trigger carries "
                 "everything, so it holds the style but bends less")
    verdict = "; ".join(words) + "."
    return {"measures": {k: {"captioned": a, "captionless": b} for k, (a, b) in rows.items()},
            "better": overall, "verdict": verdict[0].upper() + verdict[1:]}


def stage_list(state: AutoState) -> list[dict[str, Any]]:
    return [{"name": s.name, "state": s.state, "seconds": round(s.seconds, 3)} for s in state.stages.values()]


def document(state: AutoState, variants: list[Variant], report: Path | None) -> dict[str, Any]:
    summaries = [variant_summary(state, v) for v in variants]
    doc: dict[str, Any] = {"stages": stage_list(state), "report": str(report) if report else None,
                           "command": state.options.get("command")}
    if len(summaries) == 1:
        doc.update({k: v for k, v in summaries[0].items() if k not in ("variant",)})
    else:
        doc["plan"] = summaries[0].get("plan")
        doc["variants"] = summaries
        doc["comparison"] = compare(summaries)
    if state.done("checks"):
        doc["dataset"] = state.result("checks")
    if state.done("pruning"):
        doc["pruning"] = state.result("pruning")
    return doc
