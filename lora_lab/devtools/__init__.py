"""Builders for the tiny models that tests, benchmarks and the demo use (`python -m lora_lab dev ...`)."""
