"""File formats and conventions every stage shares: atomic writes, JSON files, safetensors headers,
the CLIP vocabulary written offline, and the LoRA files the trainer writes and the rest read.
Imports nothing of LoRA Lab outside this package."""
