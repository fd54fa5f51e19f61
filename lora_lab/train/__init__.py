"""LoRA training against the host's loaded model (host-free core).

    from lora_lab.train import TrainConfig, train
    result = train(host, TrainConfig(dataset_dir=..., name="ohwx"))

`train` blocks until the run ends; pass a `TrainStatus` to poll it from another thread, set
`host.interrupt` to stop it (the last good state is saved).
"""
from typing import Any

from .config import PRESETS, TrainConfig, TrainConfigError, load_config_file

# the loop needs torch: imported on first use, so commands that only read settings (the CLI's
# parsers, tagging) never pay for it
_LOOP = ("TrainingBusy", "TrainResult", "TrainStatus", "last_status", "train")


def __getattr__(name: str) -> Any:
    if name in _LOOP:
        from . import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PRESETS", "TrainConfig", "TrainConfigError", "load_config_file", *_LOOP]

__all__ = ["PRESETS", "TrainConfig", "TrainConfigError", "TrainResult", "TrainStatus",
           "TrainingBusy", "last_status", "load_config_file", "train"]
