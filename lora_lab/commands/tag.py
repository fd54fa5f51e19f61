from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tag", help="caption a folder of images with a WD14 tagger (one undoable operation)",
        description="Caption every image in DIR with a WD14 ONNX tagger. Every caption written is "
                    "one journal operation: undo reverts the whole run.")
    parser.add_argument("dir", type=Path, nargs="?", help="folder of images")
    parser.add_argument("--model", help="tagger folder (model.onnx + selected_tags.csv), "
                                        "or a name under HOME/models/taggers")
    parser.add_argument("--home", type=Path, default=None,
                        help="LoRA Lab folder holding models/taggers (default: ~/lora_lab)")
    parser.add_argument("--list-models", action="store_true", help="list the taggers in HOME and exit")
    parser.add_argument("--download", metavar="NAME",
                        help="download a SmilingWolf tagger (e.g. wd-vit-tagger-v3) into HOME and exit")
    parser.add_argument("--threshold", type=float, default=0.35, help="general tags (default 0.35)")
    parser.add_argument("--character-threshold", type=float, default=0.85,
                        help="character tags (default 0.85)")
    parser.add_argument("--mcut", action="store_true",
                        help="automatic thresholds (MCut) per category instead of the fixed ones")
    parser.add_argument("--exclude", default="", help='tags never written, comma-separated: "a,b"')
    parser.add_argument("--trigger", default="", help="trigger word, placed first in every caption")
    parser.add_argument("--mode", choices=("overwrite", "append", "prepend", "skip"), default="skip",
                        help="what to do with an existing caption (default: skip)")
    parser.add_argument("--rating", choices=("off", "first", "last"), default="off",
                        help="add the most likely rating tag (default: off)")
    parser.add_argument("--keep-underscores", action="store_true",
                        help="keep underscores in tags (default: spaces, except in kaomoji)")
    parser.add_argument("--escape", action="store_true", help=r"escape parentheses: \( \)")
    parser.add_argument("--sort", choices=("confidence", "model"), default="confidence",
                        help="tag order (default: confidence)")
    parser.add_argument("--caption-ext", default=".txt", help="caption extension (default .txt)")
    parser.add_argument("--recursive", action="store_true", help="include subfolders")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per inference (default: 1 on CPU, 8 on GPU, or the model's fixed batch)")
    parser.add_argument("--providers", default="",
                        help="onnxruntime providers in order, e.g. cuda,cpu "
                             "(default: CUDA if available, then CPU)")
    parser.add_argument("--threads", type=int, default=None,
                        help="onnxruntime intra-op threads (default: usable cores)")
    parser.set_defaults(func=run)


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def run(args: argparse.Namespace) -> int:
    from ..host.progress import ctrl_c_sets
    from ..hosts.standalone.host import StandaloneHost
    from ..tagging import TagOptions, download_model, find_models, taggers_dir
    from ..tagging.run import TagRunOptions, tag_folder

    host = StandaloneHost(home=args.home)
    if args.list_models:
        models = find_models(taggers_dir(host.models_dir()))
        if not models:
            print(f"no taggers in {taggers_dir(host.models_dir())}")
        for model in models:
            print(f"{model.name}\t{model.size_bytes / 1e6:.0f} MB\t{model.path}")
        return 0
    if args.download:
        print(download_model(args.download, host.models_dir()))
        return 0
    if args.dir is None or not args.model:
        raise ValueError("give a folder and --model (or --list-models / --download NAME)")
    options = TagRunOptions(
        tags=TagOptions(general_threshold=args.threshold, character_threshold=args.character_threshold,
                        general_mcut=args.mcut, character_mcut=args.mcut, rating=args.rating,
                        exclude=_split(args.exclude), replace_underscores=not args.keep_underscores,
                        escape_parentheses=args.escape, sort=args.sort, trigger=args.trigger),
        mode=args.mode, caption_ext=args.caption_ext, recursive=args.recursive,
        batch_size=args.batch_size, providers=_split(args.providers) or None, threads=args.threads)
    with ctrl_c_sets(host.interrupt):
        result = tag_folder(host, args.dir, args.model, options)
    print(result.summary())
    if result.journal_id:
        print(f"one undo reverts this run (journal operation {result.journal_id})", file=sys.stderr)
    if result.interrupted:
        return 130
    return 1 if result.problems else 0
