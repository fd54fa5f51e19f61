"""Run the stages in order, each result written before the next starts; refuse bad input before
any stage runs; skip what an earlier run finished; stop at an interrupt with everything kept."""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..host.protocol import Host
from . import dataset_stages as ds
from . import model_stages as ms
from .context import Context, Interrupted, Refused
from .options import AutoOptions, stage_name
from .report import REPORT_NAME, write_report
from .state import STATE_NAME, AutoState, StateError, load_state
from .summary import document, stage_list

Stage = tuple[str, Callable[[], dict[str, Any]], Callable[[dict[str, Any]], str]]


def _trigger(options: AutoOptions) -> str:
    """The trigger: as given, else the dataset's one `N_trigger` folder name, else the LoRA name."""
    from ..dataset.layout import read_groups

    if options.trigger:
        return options.trigger.strip()
    names = {g.name.strip() for g in read_groups(options.dataset).groups if g.name.strip()}
    return names.pop() if len(names) == 1 else options.name


def _colliding(host: Host, options: AutoOptions, ours: Path, resuming: bool) -> list[Path]:
    """LoRA files the run's names would clash with (the WebUI picks one file per name)."""
    from ..sweep.family import lora_files

    folder = host.lora_dir()
    if not folder.is_dir():
        return []
    return [path for path in lora_files(folder)
            if options.owns_file(path.name) and not (resuming and path.parent == ours)]


def discard_run(host: Host, options: AutoOptions) -> list[Path]:
    """Delete an earlier run in `options.out` (only a folder with an auto state file) and the
    LoRA files it wrote (only files named after its variants); returns what was removed."""
    import shutil

    if not (options.out / STATE_NAME).is_file():
        return []
    removed = [options.out]
    ours = host.lora_dir() / options.name
    if ours.is_dir():
        for path in ours.iterdir():
            if path.is_file() and options.owns_file(path.name):
                path.unlink()
                removed.append(path)
        if not any(ours.iterdir()):
            ours.rmdir()
    shutil.rmtree(options.out)
    return removed


def preflight(host: Host, options: AutoOptions, checkpoint: str | None,
              say: Callable[[str], None]) -> Context:
    """Everything that can be refused, refused now, with the reason; nothing is written."""
    from ..dataset.images import find_images
    from ..sweep.scoring import ScoringError, choose_tagger
    from ..tagging.model import TaggerError
    from ..train.config import family_resolution

    problems = options.problems()
    if problems:
        raise Refused("; ".join(problems))
    dataset = options.dataset
    if not dataset.is_dir():
        raise Refused(f"dataset folder not found: {dataset}")
    if not os.access(dataset, os.R_OK | os.X_OK):
        raise Refused(f"cannot read the dataset folder {dataset} (permission denied)")
    if not find_images(dataset, recursive=True).images:
        raise Refused(f"no images in {dataset} (looked for .png, .jpg, .jpeg, .webp, .bmp in it and its sub-folders)")
    problem = host.checkpoint_problem()
    if problem:
        raise Refused(problem)
    info = host.info()
    if info.model_family is None:
        what = f"the checkpoint {info.checkpoint}" if info.checkpoint else "no checkpoint"
        raise Refused(f"{what}: LoRA Lab trains SD1, SD2 and SDXL models and cannot tell what this is"
                      if info.checkpoint else "no model: pass --checkpoint PATH (an SD1, SD2 or SDXL checkpoint)")
    if not host.supports("render_images"):
        raise Refused(f"the {host.name} host cannot render sweeps")
    try:
        tagger = choose_tagger(options.tagger, host.models_dir())
    except (ScoringError, TaggerError, FileNotFoundError, ValueError) as e:
        raise Refused(f"a tagger is needed to caption and to score the sweep: {e}") from None
    state_path = options.out / STATE_NAME
    try:
        state = load_state(state_path)
    except StateError as e:
        raise Refused(str(e)) from None
    wanted = options.to_json()
    if state is not None:
        if state.checkpoint and info.checkpoint and state.checkpoint != info.checkpoint:
            raise Refused(f"{options.out} holds a run on {state.checkpoint}, but the model now is {info.checkpoint}: "
                          "load that model again to continue it, or use another --out")
        stored = {k: v for k, v in state.options.items() if k != "command"}
        changed = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        if changed:
            raise Refused(f"{options.out} holds a run with other settings ({', '.join(changed)}); "
                          "run the same command to continue it, add --fresh to start it over with these "
                          "settings (deletes that run's folder and LoRA files), or use another --out")
    elif options.out.exists() and any(options.out.iterdir()):
        raise Refused(f"{options.out} exists and is not a LoRA Lab auto run: choose an empty or new --out")
    ours = host.lora_dir() / options.name
    clashes = _colliding(host, options, ours, resuming=state is not None)
    if clashes:
        raise Refused(f"LoRA files named like this run exist already ({', '.join(str(p) for p in clashes[:3])}): "
                      "choose another --name")
    if state is None:
        options.out.mkdir(parents=True, exist_ok=True)
        state = AutoState(state_path, {**wanted, "command": options.command(checkpoint)}, info.checkpoint)
        state.save()
    resolution = int(options.train.get("resolution") or family_resolution(info.model_family))
    return Context(host, options, state, info.model_family, resolution, tagger, _trigger(options), say)


def stages(ctx: Context) -> list[Stage]:
    out: list[Stage] = [
        ("checks", lambda: ds.checks(ctx), ds.checks_line),
        ("tagging", lambda: ds.tagging(ctx),
         lambda r: f"tagged {r['tagged']} image(s), kept {r['kept']} caption(s)"),
        ("pruning", lambda: ds.pruning(ctx), ds.pruning_line),
        ("plan", lambda: ds.plan(ctx), ds.plan_line),
    ]
    variants = ctx.options.variants
    out += [(stage_name("training", v), lambda v=v: ms.training(ctx, v), ms.training_line) for v in variants]
    out += [(stage_name("sweep", v), lambda v=v: ms.sweep(ctx, v), ms.sweep_line) for v in variants]
    out += [(stage_name("scores", v), lambda v=v: ms.scores(ctx, v), ms.scores_line) for v in variants]
    return out


def run_auto(host: Host, options: AutoOptions, checkpoint: str | None = None,
             say: Callable[[str], None] = print, fresh: bool = False) -> dict[str, Any]:
    """Run (or continue) the flow; returns the result document with `"state"`: finished,
    interrupted or failed. Raises Refused before anything runs. `fresh`: an earlier run in the
    same folder is deleted first (its folder and LoRA files), e.g. to change its settings."""
    if fresh:
        for path in discard_run(host, options):
            say(f"removed {path}")
    ctx = preflight(host, options, checkpoint, say)
    host.interrupt.clear()  # a stop request left over from an earlier job is not for this run
    state, outcome, failure = ctx.state, "finished", None
    for name, run, line in stages(ctx):
        if state.done(name):
            try:
                said = f" — {line(state.result(name))}"
            except (KeyError, TypeError, ValueError):  # a result written by another LoRA Lab version
                said = ""
            say(f"✓ {name}: done before{said}")
            continue
        say(f"▶ {name}")
        started = time.perf_counter()
        try:
            ctx.check_interrupt()  # a stop asked for between stages: nothing of this one runs
            result = run()
        except Interrupted:
            state.record(name, "interrupted", time.perf_counter() - started)
            say(f"■ {name}: interrupted; everything finished so far is kept. Run the same command again to "
                f"continue:\n  {state.options['command']}")
            outcome = "interrupted"
            break
        except Exception as e:
            state.record(name, "failed", time.perf_counter() - started, {"error": f"{type(e).__name__}: {e}"})
            say(f"✗ {name}: {e}")
            outcome, failure = "failed", f"{name}: {e}"
            break
        state.record(name, "done", time.perf_counter() - started, result)
        say(f"✓ {name}: {line(result)} ({state.stages[name].seconds:.1f} s)")
    report = options.out / REPORT_NAME if outcome == "finished" else None
    started = time.perf_counter()
    doc = document(state, options.variants, report)
    if report is not None:  # the report lists itself among the stages
        state.record("report", "done", time.perf_counter() - started, {"path": str(report)})
        doc["stages"] = stage_list(state)
        write_report(doc, options.name, options.out)
        say(f"✓ report: {report}")
    doc["state"] = outcome
    if failure:
        doc["error"] = failure
    return doc
