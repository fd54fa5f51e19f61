"""The A1111 WebUI v1.10.1 adapter (imported only inside that WebUI)."""
