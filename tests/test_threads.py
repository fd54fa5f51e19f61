"""Outside the WebUI a run uses the cores other processes leave free: threads that spin against a
busy process cost more than they bring (see lora_lab/host/threads.py for the measurements)."""
from __future__ import annotations

import torch

from lora_lab.host.threads import ThreadTuner, pick_threads


def test_threads_leave_out_the_cores_other_processes_keep_busy() -> None:
    assert pick_threads(cpus=2, load=0.1) == 2  # quiet: every core
    assert pick_threads(cpus=2, load=1.0) == 1  # one busy process on a 2-core machine
    assert pick_threads(cpus=2, load=3.0) == 1  # never fewer than one
    assert pick_threads(cpus=16, load=4.2) == 12
    assert pick_threads(cpus=2, load=2.0, own=2) == 2  # the load our own threads make is not others'
    assert pick_threads(cpus=2, load=3.0, own=2) == 1
    assert pick_threads(cpus=2, load=0.2, own=0, runnable=2) == 1  # started seconds ago: not yet in the average
    assert pick_threads(cpus=2, load=0.2, own=2, runnable=2) == 2  # only our own threads running


def test_a_fixed_count_wins_and_is_applied(monkeypatch) -> None:
    before = torch.get_num_threads()
    try:
        assert ThreadTuner(fixed=1).adjust() == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("LORA_LAB_THREADS", "2")
        assert ThreadTuner().adjust() == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_cli_has_a_threads_option() -> None:
    from lora_lab.cli import build_parser
    from lora_lab.commands.common import host_from_args

    args = build_parser().parse_args(["train", "--checkpoint", "x.safetensors", "--threads", "3",
                                      "--dataset", "d", "--name", "n", "--device", "cpu"])
    assert host_from_args(args).threads.fixed == 3
