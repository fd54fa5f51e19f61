"""Tier 2 fails on any WebUI traceback but the one a linked checkout always causes."""
from __future__ import annotations

from lora_lab.devtools.webui_runner import unexpected_tracebacks

GIT_REPORT = """\
*** Failed reading extension data from Git repository (lora-lab)
    Traceback (most recent call last):
      File "/webui/modules/extensions.py", line 164, in do_read_info_from_repo
        commit = repo.head.commit
    ValueError: Remote named 'origin' didn't exist

    During handling of the above exception, another exception occurred:

    Traceback (most recent call last):
      File "/webui/modules/extensions.py", line 170, in do_read_info_from_repo
    git.exc.InvalidGitRepositoryError: /data/extensions/lora-lab
---
"""

SCRIPT_ERROR = """\
*** Error running process: /data/extensions/lora-lab/scripts/lora_lab_grid.py
    Traceback (most recent call last):
      File "/webui/modules/scripts.py", line 832, in process
    KeyError: 'lora'
---
"""

ASGI_ERROR = """\
ERROR:    Exception in ASGI application
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/uvicorn/protocols/http/h11_impl.py", line 407, in run_asgi
RuntimeError: boom
"""


def test_the_linked_checkouts_git_report_is_expected_with_its_chained_part() -> None:
    assert unexpected_tracebacks("Launching Web UI\n" + GIT_REPORT + "Startup time: 12.0s\n") == []


def test_any_other_traceback_is_reported_with_its_message() -> None:
    found = unexpected_tracebacks(GIT_REPORT + SCRIPT_ERROR + "Model loaded\n" + ASGI_ERROR)
    assert len(found) == 2
    assert "Error running process" in found[0] and "KeyError" in found[0]
    assert "Exception in ASGI application" in found[1] and "RuntimeError: boom" in found[1]


def test_a_traceback_right_after_the_git_report_is_not_excused_by_it() -> None:
    assert len(unexpected_tracebacks(GIT_REPORT + "Traceback (most recent call last):\nOSError\n")) == 1
