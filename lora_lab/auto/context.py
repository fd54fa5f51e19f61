"""What every stage of a run shares: the host, the options, the state file and where things go."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..host.protocol import Host
from .options import AutoOptions, Budget, Variant
from .state import AutoState


class Interrupted(Exception):
    """The person asked to stop; the stage kept what it finished."""


class Refused(ValueError):
    """The run cannot start; nothing was done. The message says why and what to change."""

    refusal = True  # said to the person, not a bug (no traceback)


@dataclass
class Context:
    host: Host
    options: AutoOptions
    state: AutoState
    family: str  # the model family the run trains for
    resolution: int
    tagger: Path
    trigger: str
    say: Callable[[str], None] = print

    @property
    def out(self) -> Path:
        return self.options.out

    @property
    def budget(self) -> Budget:
        return self.options.scale

    @property
    def images_dir(self) -> Path:
        """The working copy: the usable images (hard links) and their captions."""
        return self.out / "images"

    def train_dir(self, variant: Variant) -> Path:
        return self.out / f"train-{variant.key}"

    def sweep_dir(self, variant: Variant) -> Path:
        return self.out / f"sweep-{variant.key}"

    @property
    def lora_dir(self) -> Path:
        """Where this run's LoRA files go: a folder named after the run in the host's Lora folder,
        so the WebUI lists them and `<lora:NAME-000004:0.8>` finds them."""
        return self.host.lora_dir() / self.options.name

    def check_interrupt(self) -> None:
        if self.host.interrupt.is_set():
            raise Interrupted
