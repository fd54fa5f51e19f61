"""`python -m lora_lab demo`: the whole path on tiny models, in about a minute on a laptop CPU.

Makes a procedural dataset of coloured shapes, tags it with the tiny tagger (trigger first),
builds the tiny SD1 checkpoint, trains a LoRA for two epochs with previews, and lists the files."""
from __future__ import annotations

import argparse
from pathlib import Path

TRIGGER = "lldemo"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="dataset → tags → LoRA on tiny models (about a minute)",
                                   description=__doc__)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for everything the demo makes (default: <home>/demo, home = "
                             "$LORA_LAB_HOME or ~/lora_lab)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..devtools.sample_dataset import build_sample_dataset
    from ..devtools.tiny_model import build_tiny_model
    from ..devtools.tiny_tagger import build_tiny_tagger
    from ..host.progress import TerminalProgress, ctrl_c_sets
    from ..host.standalone import StandaloneHost
    from ..tagging.postprocess import TagOptions
    from ..tagging.run import TagRunOptions, tag_folder
    from ..train import TrainConfig, train

    # The tiny model's ops take microseconds: a second thread only adds hand-off cost.
    torch.set_num_threads(1)
    from ..host.standalone import default_home

    out = (args.out or default_home() / "demo").resolve()
    print("LoRA Lab demo on tiny random stand-in models: the tags and previews are noise; what it shows "
          "is the path from a folder of images to LoRA files.", flush=True)
    dataset = build_sample_dataset(out / "dataset", trigger=TRIGGER, images=8, repeats=4,
                                   captions=False)
    print(f"dataset: {dataset}")
    checkpoint = build_tiny_model(out / "model")
    host = StandaloneHost(checkpoint, home=out / "home", progress=TerminalProgress(), threads=1)
    tagger = build_tiny_tagger(out / "tagger")
    tagged = tag_folder(host, dataset / f"4_{TRIGGER}", tagger,
                        TagRunOptions(tags=TagOptions(trigger=TRIGGER), mode="overwrite"))
    print(tagged.summary())
    config = TrainConfig.from_preset(
        "character", dataset, "lldemo", output_dir=out / "lora", epochs=args.epochs, dim=8, alpha=8,
        unet_lr=1e-3, te_lr=1e-4, resolution=64, min_bucket_reso=64, max_bucket_reso=128,
        preview_every_n_epochs=1, preview_steps=8, mixed_precision="no")
    with ctrl_c_sets(host.interrupt):
        result = train(host, config)
    print(result.message)
    for path in sorted((out / "lora").iterdir()):
        print(f"  {path}  ({path.stat().st_size:,} bytes)")
    if result.state == "finished":
        print(f"\nNext: open the tab with `python -m lora_lab ui --tiny` and point the Dataset sub-tab at "
              f"{dataset}, or train on your own images with `python -m lora_lab train --checkpoint "
              f"YOUR_MODEL.safetensors --dataset YOUR_FOLDER --name NAME` (--help lists every setting). "
              "In the WebUI, the LoRA Lab tab does all of this against the loaded model.")
    return 0 if result.state == "finished" else 1
