"""Scores for many files: decode and resize in a thread pool while the model runs.

ONNX Runtime and Pillow's decoders and resize release the GIL, so a few threads keep the next batch
ready while the current one is inferred.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..dataset.images import ImageProblem
from ..host.protocol import InterruptFlag
from ..host.threads import usable_cpus
from .model import Tagger
from .preprocess import load_model_input


@dataclass
class Prediction:
    path: Path
    scores: np.ndarray | None = None  # one score per label; None when the image could not be used
    problem: str | None = None


def default_workers(on_gpu: bool = False) -> int:
    # On a GPU, decoding is the bottleneck. On CPU, inference is (~40x a decode for a ConvNeXt-Base
    # tagger): one thread keeps up, and more only compete with onnxruntime's for the cores.
    return min(8, usable_cpus()) if on_gpu else 1


def _load(path: Path, side: int) -> np.ndarray:
    try:
        return load_model_input(path, side)
    except ImageProblem:
        raise
    except Exception as e:  # a decoder bug on one odd file must not end a 10 000-image run
        raise ImageProblem(path, f"cannot decode: {type(e).__name__}: {e}") from None


def predict_files(tagger: Tagger, paths: Iterable[Path], batch_size: int | None = None,
                  workers: int | None = None,
                  interrupt: InterruptFlag | None = None) -> Iterator[Prediction]:
    """One Prediction per path (problems as soon as they are found, the rest batch by batch).
    Stops before the next batch once `interrupt` is set."""
    batch_size = max(1, batch_size or tagger.default_batch_size())
    workers = max(1, workers or default_workers(tagger.on_gpu))
    ahead = 2 * batch_size + workers
    queue = iter(paths)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="lora-lab-tagging")
    pending: deque[tuple[Path, Future[np.ndarray]]] = deque()

    def refill() -> None:
        while len(pending) < ahead:
            path = next(queue, None)
            if path is None:
                return
            pending.append((path, pool.submit(_load, path, tagger.side)))

    try:
        refill()
        while pending:
            if interrupt is not None and interrupt.is_set():
                return
            ready: list[tuple[Path, np.ndarray]] = []
            while pending and len(ready) < batch_size:
                path, future = pending.popleft()
                refill()
                try:
                    ready.append((path, future.result()))
                except ImageProblem as p:
                    yield Prediction(path, problem=p.reason)
            if not ready:
                continue
            if interrupt is not None and interrupt.is_set():
                return
            scores = tagger.predict(np.stack([array for _, array in ready]))
            for (path, _), row in zip(ready, scores):
                yield Prediction(path, scores=row)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
