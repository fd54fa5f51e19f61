"""The selectable txt2img script "LoRA Lab grid" (the class lives in the package)."""
from lora_lab.hosts import entry

entry.install()
from lora_lab.hosts.webui.grid_script import LoraLabGrid  # noqa: E402,F401  (the WebUI registers Script subclasses it finds here)
