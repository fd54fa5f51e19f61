"""Dataset preparation: images, captions, tagging, layout, planning and checks (host-free)."""
