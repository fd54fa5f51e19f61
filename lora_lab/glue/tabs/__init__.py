"""The LoRA Lab tab (gradio): the page and its sub-tabs, each in its own module with `build`."""
