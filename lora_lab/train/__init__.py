"""LoRA training against the host's loaded model (host-free core).

    from lora_lab.train import TrainConfig, train
    result = train(host, TrainConfig(dataset_dir=..., name="ohwx"))

`train` blocks until the run ends; pass a `TrainStatus` to poll it from another thread, set
`host.interrupt` to stop it (the last good state is saved).
"""
from .config import PRESETS, TrainConfig, TrainConfigError, load_config_file
from .loop import TrainingBusy, TrainResult, TrainStatus, last_status, train

__all__ = ["PRESETS", "TrainConfig", "TrainConfigError", "TrainResult", "TrainStatus",
           "TrainingBusy", "last_status", "load_config_file", "train"]
