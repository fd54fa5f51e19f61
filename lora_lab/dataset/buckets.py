"""Aspect-ratio buckets, exactly as kohya sd-scripts makes and picks them.

This is the single source of bucketing for LoRA Lab: the dataset checks, the steps planner and the
trainer all ask a `BucketGrid`. Buckets keep roughly the area of `resolution`², sides are multiples
of `step` within [min_side, max_side]. An image goes to the bucket with the nearest aspect ratio,
is scaled so that it covers the bucket, then centre-cropped to it (the trainer may crop randomly).
With `no_upscale`, images smaller than the bucket area get a bucket of their own size instead
(kohya `--bucket_no_upscale`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

Size = tuple[int, int]  # (width, height)

DEFAULT_MIN_SIDE = 256
DEFAULT_MAX_SIDE = 1024
DEFAULT_STEP = 64


@dataclass(frozen=True)
class BucketFit:
    bucket: Size  # what the trainer sees
    resized: Size  # the image scaled so that it covers the bucket, before the crop
    ar_error: float  # bucket aspect ratio minus image aspect ratio
    scale: float  # resize factor from the original; above 1 means upscaling

    def crop_box(self) -> tuple[int, int, int, int]:
        """Centre crop of the resized image to the bucket: (left, top, right, bottom)."""
        left = (self.resized[0] - self.bucket[0]) // 2
        top = (self.resized[1] - self.bucket[1]) // 2
        return left, top, left + self.bucket[0], top + self.bucket[1]


def _pair(resolution: int | Size) -> Size:
    return (resolution, resolution) if isinstance(resolution, int) else resolution


def _max_side(resolution: Size, max_side: int | None, step: int) -> int:
    """kohya's default largest side is 1024; raised to fit resolutions above it."""
    if max_side is not None:
        return max_side
    return max(DEFAULT_MAX_SIDE, -(-max(resolution) // step) * step)


def make_buckets(resolution: int | Size, min_side: int = DEFAULT_MIN_SIDE,
                 max_side: int | None = None, step: int = DEFAULT_STEP) -> list[Size]:
    """kohya `make_bucket_resolutions`: sorted (width, height) pairs of about resolution² pixels."""
    width, height = _pair(resolution)
    max_side = _max_side((width, height), max_side, step)
    _validate(width, height, min_side, max_side, step)
    max_area = width * height
    square = int(math.sqrt(max_area) // step) * step
    sizes = {(square, square)}
    side = min_side
    while side <= max_side:
        other = min(max_side, int((max_area // side) // step) * step)
        if other >= min_side:
            sizes.add((side, other))
            sizes.add((other, side))
        side += step
    return sorted(sizes)


def _validate(width: int, height: int, min_side: int, max_side: int, step: int) -> None:
    if step <= 0 or step % 8:
        raise ValueError(f"bucket step must be a positive multiple of 8 (got {step})")
    if min_side % step or max_side % step:
        raise ValueError(f"bucket sides {min_side} and {max_side} must be multiples of the step {step}")
    if not 0 < min_side <= max_side:
        raise ValueError(f"smallest bucket side {min_side} must be positive and at most "
                         f"the largest {max_side}")
    if min(width, height) < min_side or max(width, height) > max_side:
        raise ValueError(f"resolution {width}x{height} must lie within the bucket sides "
                         f"{min_side}..{max_side}")


class BucketGrid:
    def __init__(self, resolution: int | Size = 512, min_side: int = DEFAULT_MIN_SIDE,
                 max_side: int | None = None, step: int = DEFAULT_STEP,
                 no_upscale: bool = False) -> None:
        width, height = _pair(resolution)
        self.resolution: Size = (width, height)
        self.min_side, self.step = min_side, step
        self.max_side = _max_side(self.resolution, max_side, step)
        self.no_upscale = no_upscale
        self.sizes: tuple[Size, ...] = tuple(make_buckets(self.resolution, min_side, self.max_side, step))
        self._size_set = frozenset(self.sizes)
        self._ratios = [w / h for w, h in self.sizes]
        self.max_area = width * height

    def fit(self, width: int, height: int) -> BucketFit:
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive (got {width}x{height})")
        ratio = width / height
        if self.no_upscale:
            bucket, resized = self._own_size_bucket(width, height, ratio)
        else:
            bucket = (width, height)
            if bucket not in self._size_set:
                # first of the nearest ratios, as numpy's argmin in kohya picks it
                errors = [abs(r - ratio) for r in self._ratios]
                bucket = self.sizes[errors.index(min(errors))]
            if ratio > bucket[0] / bucket[1]:  # wider than the bucket: match heights
                scale = bucket[1] / height
            else:
                scale = bucket[0] / width
            resized = (int(width * scale + 0.5), int(height * scale + 0.5))
        return BucketFit(bucket, resized, bucket[0] / bucket[1] - ratio, resized[0] / width)

    def bucket_for(self, width: int, height: int) -> Size:
        return self.fit(width, height).bucket

    def _own_size_bucket(self, width: int, height: int, ratio: float) -> tuple[Size, Size]:
        if width * height > self.max_area:
            scaled_w = math.sqrt(self.max_area * ratio)
            scaled_h = self.max_area / scaled_w
            w_first = self._round(scaled_w)
            ratio_w_first = w_first / self._round(w_first / ratio)
            h_first = self._round(scaled_h)
            ratio_h_first = self._round(h_first * ratio) / h_first
            if abs(ratio_w_first - ratio) < abs(ratio_h_first - ratio):
                resized = (w_first, int(w_first / ratio + 0.5))
            else:
                resized = (int(h_first * ratio + 0.5), h_first)
        else:
            resized = (width, height)
        bucket = (resized[0] - resized[0] % self.step, resized[1] - resized[1] % self.step)
        if bucket[0] == 0 or bucket[1] == 0:
            raise ValueError(f"image {width}x{height} is smaller than one bucket step ({self.step} px)")
        return bucket, resized

    def _round(self, x: float) -> int:
        n = int(x + 0.5)
        return n - n % self.step


@lru_cache(maxsize=16)
def grid(resolution: int | Size = 512, min_side: int = DEFAULT_MIN_SIDE,
         max_side: int | None = None, step: int = DEFAULT_STEP,
         no_upscale: bool = False) -> BucketGrid:
    """A shared grid per setting (grids are immutable)."""
    return BucketGrid(resolution, min_side, max_side, step, no_upscale)


def bucket_for(width: int, height: int, resolution: int | Size = 512) -> Size:
    """The bucket an image of this size lands in at `resolution`, with kohya's default sides."""
    return grid(resolution).bucket_for(width, height)

