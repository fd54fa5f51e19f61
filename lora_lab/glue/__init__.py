"""Everything that imports the WebUI (`modules`), gradio or the web stack lives here, and nothing
else in `lora_lab` imports those (tests/test_boundary.py enforces it): `webui/` (the WebUI host
adapter, registration, the txt2img grid script), `tabs/` (the tab and its sub-tabs), `api/` (the
HTTP routes) and `standalone_app` (the tab and API served without a WebUI)."""
