"""The standalone host: checkpoints loaded with the real `ldm`/`sgm` code, LoRA Lab's own sampler
and txt2img, progress on the terminal. Used by the CLI, `python -m lora_lab ui` and the tests."""
