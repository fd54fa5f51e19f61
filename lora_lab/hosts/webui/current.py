"""The host object of this WebUI process. `hosts/entry.py` installs the adapter for the WebUI that
is running (this room knows none of them); everything here asks `get_host()`."""
from __future__ import annotations

from collections.abc import Callable

from .host import WebUIHost

_factory: Callable[[], WebUIHost] | None = None
_host: WebUIHost | None = None


def install(factory: Callable[[], WebUIHost]) -> None:
    global _factory, _host
    if _factory is not factory:
        _factory, _host = factory, None


def get_host() -> WebUIHost:
    global _host
    if _host is None:
        if _factory is None:
            raise RuntimeError("LoRA Lab's WebUI adapter is not installed (scripts/ call lora_lab.hosts.entry)")
        _host = _factory()
    return _host
