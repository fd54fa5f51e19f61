"""Everything that imports the WebUI (`modules`), gradio or the web stack lives here, and nothing
else in `lora_lab` imports those (tests/test_boundary.py enforces it)."""
