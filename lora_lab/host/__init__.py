"""The host port: what the core needs from a host (`protocol.Host`, its data types and progress
sinks), and nothing above it. Adapters live in `lora_lab.hosts`."""
from .protocol import (Family, Host, HostCannot, HostInfo, InterruptFlag, ModelParts, PreviewRequest,
                       ProgressSink)

__all__ = ["Family", "Host", "HostCannot", "HostInfo", "InterruptFlag", "ModelParts", "PreviewRequest",
           "ProgressSink"]
