"""The /lora-lab/v1 HTTP routes (FastAPI), the same in the WebUI and standalone."""
