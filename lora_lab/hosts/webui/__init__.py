"""What the WebUIs (A1111, Forge Neo) share: registration of the tab, settings and API, the txt2img
grid script and X/Y/Z axes, jobs as WebUI tasks, progress into `shared.state`; `current.get_host`
gives the adapter of the running WebUI. Imported only inside a WebUI."""
