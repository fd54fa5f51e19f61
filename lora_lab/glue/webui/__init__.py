"""The WebUI side: its host adapter, registration of the tab, settings and API, the txt2img grid
script and X/Y/Z axes, and running jobs as WebUI tasks. Imported only inside the WebUI."""
