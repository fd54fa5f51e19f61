"""Aspect-ratio buckets as kohya sd-scripts makes and assigns them."""
from __future__ import annotations

import pytest

from lora_lab.dataset.buckets import BucketGrid, bucket_for, make_buckets

SD1_512 = [(256, 832), (256, 896), (256, 960), (256, 1024), (320, 704), (320, 768), (384, 640),
           (448, 576), (512, 512), (576, 448), (640, 384), (704, 320), (768, 320), (832, 256),
           (896, 256), (960, 256), (1024, 256)]


def test_buckets_at_512_match_sd_scripts() -> None:
    assert make_buckets(512) == SD1_512


@pytest.mark.parametrize("resolution", [512, 640, 768, 1024, 1280])
def test_every_bucket_fits_the_budget(resolution: int) -> None:
    grid = BucketGrid(resolution)
    assert (resolution // 64 * 64,) * 2 in grid.sizes
    for w, h in grid.sizes:
        assert w % 64 == 0 and h % 64 == 0
        assert 256 <= min(w, h) and max(w, h) <= max(1024, resolution)
        assert w * h <= resolution * resolution


@pytest.mark.parametrize(("size", "bucket"), [
    ((512, 512), (512, 512)),
    ((1024, 1024), (512, 512)),
    ((640, 512), (576, 448)),
    ((3000, 4000), (448, 576)),
    ((1920, 1080), (640, 384)),
    ((300, 2000), (256, 1024)),
    ((768, 320), (768, 320)),  # an exact bucket size is its own bucket
])
def test_bucket_for(size: tuple[int, int], bucket: tuple[int, int]) -> None:
    assert bucket_for(*size) == bucket


@pytest.mark.parametrize("size", [(640, 512), (300, 2000), (4000, 3000), (200, 200), (1000, 999)])
def test_the_resized_image_covers_its_bucket(size: tuple[int, int]) -> None:
    fit = BucketGrid(512).fit(*size)
    assert fit.resized[0] >= fit.bucket[0] and fit.resized[1] >= fit.bucket[1]
    left, top, right, bottom = fit.crop_box()
    assert (right - left, bottom - top) == fit.bucket
    assert left >= 0 and top >= 0 and right <= fit.resized[0] and bottom <= fit.resized[1]
    assert fit.scale == pytest.approx(fit.resized[0] / size[0])


def test_no_upscale_keeps_small_images_small() -> None:
    grid = BucketGrid(512, no_upscale=True)
    small = grid.fit(300, 200)
    assert (small.bucket, small.resized, small.scale) == ((256, 192), (300, 200), 1.0)
    big = grid.fit(2000, 1000)  # scaled to the area budget, then floored to the step
    assert (big.bucket, big.resized) == ((640, 320), (640, 320))


@pytest.mark.parametrize("kwargs", [
    {"resolution": 128}, {"resolution": 512, "step": 60}, {"resolution": 512, "min_side": 300},
    {"resolution": 512, "max_side": 448},
])
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        BucketGrid(**kwargs)
