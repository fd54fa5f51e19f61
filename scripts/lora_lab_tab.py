"""LoRA Lab's WebUI entry: registers the tab, the settings section and the /lora-lab/v1 API.
All logic lives in the `lora_lab` package (imported here so later lazy imports resolve)."""
from lora_lab.hosts import entry

entry.register(__file__)
