"""`python -m lora_lab sweep score MANIFEST`: tag a rendered sweep and score every cell."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sweep", help="sweeps: automatic scores for every cell")
    sub = parser.add_subparsers(dest="sweep_command", metavar="ACTION")
    sub.required = True
    score = sub.add_parser("score", help="tag a sweep's images and score each epoch × weight cell "
                                         "(proxies measured with a tagger; you decide)")
    score.add_argument("manifest", type=Path, help="the sweep's sweep.json or its folder")
    score.add_argument("--tagger", default=None,
                       help="a tagger folder or a name under <home>/models/taggers (default: the only one)")
    score.add_argument("--dataset", type=Path, default=None,
                       help="the training images (default: from the LoRA's run file)")
    score.add_argument("--home", type=Path, default=None, help="LoRA Lab folder (default: ~/lora_lab)")
    score.add_argument("--json", action="store_true", help="print the scores document")
    score.set_defaults(func=run_score)


def run_score(args: argparse.Namespace) -> int:
    from ..sweep.review_data import open_sweep
    from ..hosts.standalone.host import default_home
    from ..sweep.scoring import choose_tagger, score_sweep, shortlist

    manifest = open_sweep(args.manifest)
    tagger = choose_tagger(args.tagger, (args.home or default_home()) / "models")
    scores = score_sweep(manifest, tagger, args.dataset)
    if args.json:
        print(json.dumps({**scores, "shortlist": shortlist(manifest, scores)}, indent=1))
        return 0
    print(f"{manifest.path}: scored with {scores['tagger']} against {scores['dataset']}")
    print(f"characteristic tags: {', '.join(scores['characteristic_tags'][:12]) or '(none)'}")
    print(f"{'cell':28} {'score':>6} {'fidelity':>8} {'adherence':>9} {'diversity':>9} {'influence':>9}")
    for cell in manifest.cells:
        entry = scores["cells"].get(str(cell.index))
        if entry is None:
            continue
        label = f"{cell.lora or 'no LoRA'} @ {cell.weight if cell.weight is not None else '-'}"
        values = [entry[k] for k in ("score", "fidelity", "adherence", "diversity", "influence")]
        shown = " ".join(f"{'-' if v is None else f'{v:.3f}':>{w}}" for v, w in zip(values, (6, 8, 9, 9, 9)))
        print(f"{label[:28]:28} {shown}" + (f"  gated: {entry['gated']}" if entry.get("gated") else ""))
    best = shortlist(manifest, scores)
    if best:
        print("shortlist: " + "; ".join(f"<lora:{b['lora']}:{b['weight']}> ({b['score']:.3f})" for b in best))
    return 0
