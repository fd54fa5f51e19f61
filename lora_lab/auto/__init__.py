"""The one-run flow: from a folder of images to a ranked shortlist with its evidence.

`run_auto(host, options)` runs the stages in order (checks → tagging → pruning → plan → training
→ sweep → scores → report), each one writing its result into the run's state file before the next
starts, so running it again continues where it stopped. Free of any WebUI or gradio import: the
host is passed in, and the WebUI's glue gives it the WebUI's own pipeline for the sweep images.
"""
