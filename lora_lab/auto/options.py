"""What a one-run (`auto`) flow is asked to do, and the budgets that scale it."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PRESETS = ("character", "style", "concept")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class Budget:
    """How much of the guides' ranges a run spends: images × repeats per epoch (guides: 200–400),
    epochs (10–30), how often an epoch file is saved, and how wide the sweep is."""

    samples_per_epoch: int
    epochs: int
    save_every: int
    weights: tuple[float, ...]
    showcase_prompts: int  # out-of-domain prompts from the preset's (or the user's) templates
    domain_prompts: int  # in-domain prompts: training captions
    seeds: int


BUDGETS: dict[str, Budget] = {
    "quick": Budget(200, 10, 2, (0.6, 0.8, 1.0), 3, 1, 1),
    "standard": Budget(300, 12, 2, (0.5, 0.75, 1.0), 4, 2, 2),
    "thorough": Budget(400, 20, 2, (0.4, 0.6, 0.8, 1.0, 1.2), 6, 2, 3),
}

AB_VARIANTS = ("captioned", "captionless")
# the CLI flag of each single-valued option `command` writes when it is not the default
_FLAGS = (("--trigger", "trigger"), ("--tagger", "tagger"), ("--wildcards", "wildcards"),
          ("--negative", "negative_prompt"), ("--sweep-steps", "sweep_steps"), ("--cfg", "cfg_scale"),
          ("--seed", "seed"), ("--samples-per-epoch", "samples_per_epoch"), ("--epochs", "epochs"))


@dataclass(frozen=True)
class Variant:
    key: str  # "main", "captioned" or "captionless"
    lora_name: str  # the file stem of its final LoRA
    captions: bool  # trained with the captions (else the folder trigger is each image's caption)


def stage_name(base: str, variant: Variant) -> str:
    """`training`, or `training:captioned` when a run has several variants."""
    return base if variant.key == "main" else f"{base}:{variant.key}"


@dataclass
class AutoOptions:
    dataset: Path
    name: str
    out: Path
    trigger: str | None = None  # None: the dataset's N_trigger folder name, else the LoRA name
    preset: str = "character"
    budget: str = "standard"
    ab_captions: bool = False
    prune: bool = False  # apply the pruning proposal (else it is only shown)
    tagger: str | None = None  # a folder or a name under <home>/models/taggers; None: the only one
    templates: list[str] = field(default_factory=list)  # the user's showcase templates
    wildcards: Path | None = None
    negative_prompt: str = ""
    sweep_steps: int = 20
    cfg_scale: float = 7.0
    seed: int = 42
    samples_per_epoch: int | None = None  # None: the budget's
    epochs: int | None = None  # None: the budget's
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides (`--set KEY=VALUE`)

    def __post_init__(self) -> None:
        self.dataset, self.out = Path(self.dataset), Path(self.out)
        if self.wildcards is not None:
            self.wildcards = Path(self.wildcards)

    def problems(self) -> list[str]:
        p = []
        if not _NAME.match(self.name or "") or self.name.endswith("."):
            p.append(f"name {self.name!r}: use letters, digits, '_', '-', '.', '+' (it becomes a file name)")
        if self.preset not in PRESETS:
            p.append(f"preset {self.preset!r}: choose {', '.join(PRESETS)}")
        if self.budget not in BUDGETS:
            p.append(f"budget {self.budget!r}: choose {', '.join(BUDGETS)}")
        if self.sweep_steps < 1:
            p.append(f"sweep steps must be at least 1 (got {self.sweep_steps})")
        for key in ("samples_per_epoch", "epochs"):
            value = getattr(self, key)
            if value is not None and value < 1:
                p.append(f"{key.replace('_', ' ')} must be at least 1 (got {value})")
        if self.trigger is not None and not self.trigger.strip():
            p.append("the trigger word is empty")
        return p

    @property
    def scale(self) -> Budget:
        """The budget with the explicit overrides applied."""
        from dataclasses import replace

        budget = BUDGETS[self.budget]
        return replace(budget, samples_per_epoch=self.samples_per_epoch or budget.samples_per_epoch,
                       epochs=self.epochs or budget.epochs)

    def owns_file(self, name: str) -> bool:
        """Whether a file name is one a run of these variants writes into the Lora folder:
        NAME[-000002] (or a stopped run's NAME-step00000128) with .safetensors (or another LoRA suffix),
        .json, .preview.png, .lora_lab.json."""
        names = "|".join(re.escape(v.lora_name) for v in self.variants)
        pattern = (rf"({names})(-\d{{6}}|-step\d{{8}})?"
                   rf"(\.safetensors|\.pt|\.ckpt|\.json|\.preview\.png|\.lora_lab\.json)")
        return re.fullmatch(pattern, name, re.IGNORECASE) is not None

    @property
    def variants(self) -> list[Variant]:
        if self.ab_captions:
            return [Variant(key, f"{self.name}-{key}", key == "captioned") for key in AB_VARIANTS]
        return [Variant("main", self.name, True)]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("dataset", "out", "wildcards"):
            out[key] = None if out[key] is None else str(out[key])
        return out

    def command(self, checkpoint: str | None = None) -> str:
        """The command line that runs (or continues) this flow; settings left at their default are
        left out."""
        import shlex
        from dataclasses import fields

        defaults = {f.name: f.default for f in fields(self)}
        words = ["python", "-m", "lora_lab", "auto", str(self.dataset), "--name", self.name]
        if checkpoint:
            words += ["--checkpoint", checkpoint]
        words += ["--preset", self.preset, "--budget", self.budget, "--out", str(self.out)]
        if self.ab_captions:
            words += ["--ab", "captions"]
        if self.prune:
            words.append("--prune")
        for template in self.templates:
            words += ["--template", template]
        for flag, key in _FLAGS:
            value = getattr(self, key)
            if value is not None and value != defaults[key]:
                words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
        for key, value in self.train.items():
            words += ["--set", f"{key}={value}"]
        return " ".join(shlex.quote(w) for w in words)
