"""Host adapters, each in its own room, each a `lora_lab.host.Host`:
- `a1111/`: the AUTOMATIC1111 WebUI v1.10.1 (ldm/sgm model objects);
- `webui/`: what A1111 and Forge Neo share as WebUIs (registration, the txt2img grid script, X/Y/Z
  axes, tasks, progress) and the choice of adapter for the running WebUI;
- `standalone/`: LoRA Lab's own process (CLI, `ui`, tests) loading checkpoints with ldm/sgm;
- `sgm_parts`: SDXL's sgm `DiffusionEngine` as `ModelParts`, for the two hosts that hold one.
A room never imports another room (tests/test_boundary.py)."""
