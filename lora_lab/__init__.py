"""LoRA Lab: from a folder of images to a LoRA chosen with evidence.

Floors, top down (tests/test_boundary.py keeps every import pointing down):
- front ends: `commands/` (CLI) and `glue/` (gradio tab, HTTP API, the standalone app);
- host adapters, one room each: `hosts/a1111`, `hosts/neo`, `hosts/standalone` (`hosts/webui` is
  what the two WebUIs share; `hosts/sgm_parts` what the two sgm-based hosts share);
- the pipeline: `auto/` (one-run flow) over `sweep/` and `train/` over `tagging/` and `dataset/`;
- the port `host/` (the contract a host fulfils: `lora_lab.host.Host`) and `files/` (file
  formats and conventions: atomic writes, JSON, safetensors headers, CLIP vocabulary, LoRA files).
Only the WebUI adapters import a WebUI (`modules`, `modules_forge`, `backend`); only they and
`glue/` import gradio or the web stack.
"""

__version__ = "0.1.0"
