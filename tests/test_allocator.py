"""The trainer's allocator setting for its own process: freed activations are reused, not faulted in
again every step."""
from __future__ import annotations

import resource
import sys

import pytest
import torch

from lora_lab.train.allocator import steady_heap

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")


def faults_of_repeated_allocation(times: int = 4, mib: int = 64) -> int:
    """Minor page faults of allocating, touching and freeing the same large buffer again and again
    (what a training step does with its activations), after a few rounds to settle the heap."""
    for _ in range(8):
        torch.ones(mib << 18).sum()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        torch.ones(mib << 18).sum()  # mib MiB of float32
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_a_steady_heap_reuses_memory_instead_of_faulting_it_in_again() -> None:
    churn = faults_of_repeated_allocation()
    assert churn > 4 * 10_000  # each 64 MiB buffer came back from the kernel as fresh pages
    with steady_heap() as applied:
        assert applied
        assert faults_of_repeated_allocation() < churn / 10


def test_disabled_it_changes_nothing() -> None:
    with steady_heap(False) as applied:
        assert not applied
