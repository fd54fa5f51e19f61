"""LoRA Lab: from a folder of images to a LoRA chosen with evidence.

The package core never imports the WebUI (`modules`) or gradio; everything that does lives in
`lora_lab.glue`. The host (WebUI or standalone) is passed in as a `lora_lab.host.Host`.
"""

__version__ = "0.1.0"
