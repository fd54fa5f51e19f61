"""The selectable txt2img script "LoRA Lab grid" (the class lives in the package)."""
from lora_lab.glue.webui.grid_script import LoraLabGrid  # noqa: F401  (the WebUI registers Script subclasses it finds here)
