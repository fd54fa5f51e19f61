"""Tagging a folder with the tiny WD14-contract tagger: the same scores as a plain onnxruntime run,
captions written safely, one undo per run, interrupts that keep what was finished."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image, ImageOps

from lora_lab.cli import main as cli_main
from lora_lab.dataset.images import ImageProblem
from lora_lab.dataset.journal import Journal
from lora_lab.devtools.tiny_tagger import build_tiny_tagger
from lora_lab.host.progress import RecordingProgress
from lora_lab.hosts.standalone.host import StandaloneHost
from lora_lab.tagging import (TaggerError, TagOptions, TagRunOptions, download_model, find_models,
                              load_tagger, loaded_taggers, predict_files, preview_tags, resolve_model,
                              tag_folder, unload_taggers)


@pytest.fixture
def host(tmp_path: Path) -> StandaloneHost:
    return StandaloneHost(home=tmp_path / "home", progress=RecordingProgress())


def picture(seed: int, size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    rng = np.random.RandomState(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1),
                    rng.randint(0, 256, (h, w))], -1).astype(np.uint8)
    im = Image.fromarray(rgb, "RGB")
    if mode == "RGBA":
        im.putalpha(Image.fromarray((xx * 255 // max(w - 1, 1)).astype(np.uint8), "L"))
    return im


def make_dataset(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    picture(1, (90, 60)).save(folder / "wide.png")
    picture(2, (50, 120), "RGBA").save(folder / "tall_alpha.png")
    picture(3, (64, 64)).save(folder / "square.png")
    picture(4, (100, 70)).save(folder / "small.jpg", quality=95)  # < 2x64: no reduced JPEG decode
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    picture(5, (110, 40)).save(folder / "rotated.jpg", quality=95, exif=exif)
    picture(6, (300, 200)).save(folder / "big.webp", quality=90)
    return sorted(p for p in folder.iterdir() if p.suffix != ".txt")


# --- an independent reference: the contract written out plainly --------------------------------

def reference_input(path: Path, side: int) -> np.ndarray:
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGBA")
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, im).convert("RGB")
    edge = max(rgb.size)
    square = Image.new("RGB", (edge, edge), (255, 255, 255))
    square.paste(rgb, ((edge - rgb.width) // 2, (edge - rgb.height) // 2))
    square = square.resize((side, side), Image.BICUBIC)
    return np.asarray(square, dtype=np.float32)[:, :, ::-1]


def reference_scores(model_dir: Path, paths: list[Path]) -> dict[Path, np.ndarray]:
    session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    side = inp.shape[1]
    out = {}
    for path in paths:
        out[path] = session.run(None, {inp.name: reference_input(path, side)[None]})[0][0]
    return out


def reference_caption(model_dir: Path, scores: np.ndarray, threshold: float = 0.35) -> str:
    rows = list(csv.DictReader((model_dir / "selected_tags.csv").open(encoding="utf-8")))
    picked = [(float(s), r["name"]) for s, r in zip(scores, rows)
              if (r["category"] == "0" and s >= threshold) or (r["category"] == "4" and s >= 0.85)]
    picked.sort(key=lambda p: -p[0])
    return ", ".join(n if n in ("^_^", "o_o") else n.replace("_", " ") for _, n in picked)


def test_scores_and_captions_match_a_plain_onnxruntime_run(tmp_path: Path, host: StandaloneHost,
                                                           tiny_tagger_dir: Path) -> None:
    images = make_dataset(tmp_path / "data")
    big = images.pop(images.index(tmp_path / "data" / "big.webp"))
    expected = reference_scores(tiny_tagger_dir, images + [big])
    tagger = load_tagger(tiny_tagger_dir)
    try:
        got = {p.path: p.scores for p in predict_files(tagger, images + [big], batch_size=4)}
    finally:
        unload_taggers()
    for path in images + [big]:
        np.testing.assert_allclose(got[path], expected[path], atol=1e-5, err_msg=path.name)

    result = tag_folder(host, tmp_path / "data", tiny_tagger_dir, TagRunOptions())
    assert result.tagged == 6 and not result.problems
    for path in images + [big]:
        written = path.with_suffix(".txt").read_text(encoding="utf-8")
        assert written == reference_caption(tiny_tagger_dir, expected[path]), path.name


def test_large_jpeg_decoded_at_reduced_scale_scores_like_full_decode(tmp_path: Path,
                                                                     tiny_tagger_dir: Path) -> None:
    path = tmp_path / "photo.jpg"
    picture(7, (1200, 800)).save(path, quality=92)
    tagger = load_tagger(tiny_tagger_dir)
    try:
        (got,) = predict_files(tagger, [path])
    finally:
        unload_taggers()
    np.testing.assert_allclose(got.scores, reference_scores(tiny_tagger_dir, [path])[path], atol=0.01)


def test_batch_1_and_4_give_the_same_scores(tmp_path: Path, tiny_tagger_dir: Path) -> None:
    images = make_dataset(tmp_path / "data") * 2
    tagger = load_tagger(tiny_tagger_dir)
    try:
        one = [p.scores for p in predict_files(tagger, images, batch_size=1)]
        four = [p.scores for p in predict_files(tagger, images, batch_size=4, workers=3)]
    finally:
        unload_taggers()
    np.testing.assert_allclose(np.stack(one), np.stack(four), atol=1e-6)


def test_contract_is_read_from_the_graph_and_fixed_batch_runs_one_at_a_time(
        tmp_path: Path, tiny_tagger_dir: Path) -> None:
    fixed = build_tiny_tagger(tmp_path / "fixed", side=48, batch=1)
    dynamic = build_tiny_tagger(tmp_path / "dynamic", side=48)
    images = make_dataset(tmp_path / "data")
    a, b = load_tagger(fixed), load_tagger(dynamic)
    try:
        assert (a.side, a.fixed_batch, a.default_batch_size()) == (48, 1, 1)
        assert (b.side, b.fixed_batch) == (48, None)
        assert (a.input_name, a.output_name) == ("input_1:0", "predictions_sigmoid")
        got = np.stack([p.scores for p in predict_files(a, images, batch_size=4)])
        want = np.stack([p.scores for p in predict_files(b, images, batch_size=4)])
    finally:
        unload_taggers()
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_preview_scores_one_image_without_writing(tmp_path: Path, host: StandaloneHost,
                                                  tiny_tagger_dir: Path) -> None:
    images = make_dataset(tmp_path / "data")
    expected = reference_scores(tiny_tagger_dir, images[:1])[images[0]]
    selection = preview_tags(host, images[0], tiny_tagger_dir, TagOptions(rating="first"))
    assert selection.tags[0].category == "rating"
    assert ", ".join(t.tag for t in selection.tags[1:]) == reference_caption(tiny_tagger_dir, expected)
    labels = tagger_labels(tiny_tagger_dir)
    for tag in selection.tags:
        assert tag.score == pytest.approx(float(expected[labels.index(tag.label)]), abs=1e-5)
    assert not list((tmp_path / "data").glob("*.txt"))
    assert loaded_taggers() == [tiny_tagger_dir.name]
    unload_taggers()
    (tmp_path / "data" / "broken.png").write_bytes(b"")
    with pytest.raises(ImageProblem, match="empty file"):
        preview_tags(host, tmp_path / "data" / "broken.png", tiny_tagger_dir)
    unload_taggers()


def tagger_labels(model_dir: Path) -> list[str]:
    return [r["name"] for r in csv.DictReader((model_dir / "selected_tags.csv").open(encoding="utf-8"))]


def test_models_are_found_by_folder_or_name(tmp_path: Path, host: StandaloneHost) -> None:
    taggers = host.models_dir() / "taggers"
    build_tiny_tagger(taggers / "tiny-b")
    build_tiny_tagger(taggers / "tiny-a")
    (taggers / "not-a-model").mkdir()
    assert [m.name for m in find_models(taggers)] == ["tiny-a", "tiny-b"]
    assert resolve_model("tiny-a", host.models_dir()) == taggers / "tiny-a"
    assert resolve_model(taggers / "tiny-b") == taggers / "tiny-b"
    with pytest.raises(TaggerError, match="missing model.onnx, selected_tags.csv"):
        resolve_model("not-a-model", host.models_dir())
    with pytest.raises(TaggerError, match="tiny-a, tiny-b"):
        resolve_model("nope", host.models_dir())


def test_a_broken_model_is_reported_before_anything_is_written(tmp_path: Path, host: StandaloneHost) -> None:
    model = build_tiny_tagger(tmp_path / "broken")
    (model / "model.onnx").write_bytes(b"not onnx")
    make_dataset(tmp_path / "data")
    with pytest.raises(TaggerError, match="cannot load"):
        tag_folder(host, tmp_path / "data", model)
    assert not list((tmp_path / "data").glob("*.txt"))


def test_providers_are_checked(tiny_tagger_dir: Path) -> None:
    with pytest.raises(TaggerError, match="not available"):
        load_tagger(tiny_tagger_dir, providers=["NoSuchExecutionProvider"])
    tagger = load_tagger(tiny_tagger_dir, providers=["cpu"])
    assert tagger.providers == ["CPUExecutionProvider"]
    unload_taggers()


def test_model_is_unloaded_after_a_run_unless_kept(tmp_path: Path, host: StandaloneHost,
                                                   tiny_tagger_dir: Path) -> None:
    make_dataset(tmp_path / "data")
    tag_folder(host, tmp_path / "data", tiny_tagger_dir, TagRunOptions(mode="overwrite"))
    assert loaded_taggers() == []
    tag_folder(host, tmp_path / "data", tiny_tagger_dir, TagRunOptions(mode="overwrite", keep_loaded=True))
    assert loaded_taggers() == [tiny_tagger_dir.name]
    assert unload_taggers() == 1 and loaded_taggers() == []


def test_modes_for_existing_captions(tmp_path: Path, host: StandaloneHost, tiny_tagger_dir: Path) -> None:
    images = make_dataset(tmp_path / "data")
    target = images[0].with_suffix(".txt")
    tag_folder(host, tmp_path / "data", tiny_tagger_dir, TagRunOptions())
    predicted = target.read_text(encoding="utf-8").split(", ")
    first = predicted[0]

    def run(mode: str, before: bytes) -> str:
        target.write_bytes(before)
        result = tag_folder(host, tmp_path / "data", tiny_tagger_dir, TagRunOptions(mode=mode))
        assert not result.problems
        return target.read_text(encoding="utf-8")

    assert run("skip", b"mine, " + first.encode()) == f"mine, {first}"
    assert run("overwrite", b"mine") == ", ".join(predicted)
    assert run("append", f"mine, {first}".encode()) == ", ".join(["mine"] + predicted)
    assert run("prepend", f"mine, {first}".encode()) == ", ".join(predicted + ["mine"])
    assert run("skip", b"") == ", ".join(predicted)  # an empty caption is no caption


def test_trigger_and_options_reach_the_caption(tmp_path: Path, host: StandaloneHost,
                                               tiny_tagger_dir: Path) -> None:
    images = make_dataset(tmp_path / "data")
    plain = tag_folder(host, tmp_path / "data", tiny_tagger_dir, TagRunOptions())
    assert plain.tagged == len(images)
    predicted = images[0].with_suffix(".txt").read_text(encoding="utf-8").split(", ")
    options = TagRunOptions(mode="overwrite", caption_ext=".caption",
                            tags=TagOptions(trigger="zkw woman", exclude=(predicted[1],), rating="last"))
    tag_folder(host, tmp_path / "data", tiny_tagger_dir, options)
    caption = images[0].with_suffix(".caption").read_text(encoding="utf-8").split(", ")
    assert caption[0] == "zkw woman" and predicted[1] not in caption
    assert caption[1:-1] == [t for t in predicted if t != predicted[1]]
    assert caption[-1] in ("general", "sensitive", "questionable", "explicit")


def test_one_undo_restores_every_caption_byte(tmp_path: Path, host: StandaloneHost,
                                              tiny_tagger_dir: Path) -> None:
    images = make_dataset(tmp_path / "data")
    before = {images[0].with_suffix(".txt"): b"\xef\xbb\xbfold one\r\n",
              images[1].with_suffix(".txt"): b"old two"}
    for path, data in before.items():
        path.write_bytes(data)
    result = tag_folder(host, tmp_path / "data", tiny_tagger_dir, TagRunOptions(mode="overwrite"))
    assert len(result.written) == len(images) and result.journal_id
    assert images[0].with_suffix(".txt").read_bytes().startswith(b"\xef\xbb\xbf")  # format kept
    journal = Journal(tmp_path / "data")
    assert journal.history()[-1]["name"] == f"tag with {tiny_tagger_dir.name}"
    journal.undo()
    for image in images:
        caption = image.with_suffix(".txt")
        assert caption.read_bytes() == before[caption] if caption in before else not caption.exists()


def test_a_second_identical_run_writes_nothing(tmp_path: Path, host: StandaloneHost,
                                               tiny_tagger_dir: Path) -> None:
    make_dataset(tmp_path / "data")
    tag_folder(host, tmp_path / "data", tiny_tagger_dir, TagRunOptions())
    again = tag_folder(host, tmp_path / "data", tiny_tagger_dir, TagRunOptions(mode="overwrite"))
    assert again.written == [] and len(again.unchanged) == 6 and again.journal_id is None


class InterruptAt(RecordingProgress):
    def __init__(self, host: StandaloneHost, step: int) -> None:
        super().__init__()
        self.host, self.at = host, step

    def update(self, step: int, total: int | None = None, text: str = "", image=None) -> None:
        super().update(step, total, text, image)
        if step == self.at:
            self.host.interrupt.set()


def test_interrupt_keeps_finished_captions_and_leaves_the_rest_untouched(
        tmp_path: Path, tiny_tagger_dir: Path) -> None:
    host = StandaloneHost(home=tmp_path / "home")
    host.progress = InterruptAt(host, 2)
    images = make_dataset(tmp_path / "data")
    for image in images:
        image.with_suffix(".txt").write_bytes(b"old")
    result = tag_folder(host, tmp_path / "data", tiny_tagger_dir,
                        TagRunOptions(mode="overwrite", batch_size=1, workers=1))
    assert result.interrupted and len(result.written) == 2 and len(result.not_done) == 4
    assert host.progress.job == "Tagging" and host.progress.updates[-1][:2] == (2, 6)
    for image in result.written:
        assert image.with_suffix(".txt").read_bytes() != b"old"
    for image in result.not_done:
        assert image.with_suffix(".txt").read_bytes() == b"old"
    Journal(tmp_path / "data").undo()
    assert all(i.with_suffix(".txt").read_bytes() == b"old" for i in images)


def test_stem_collisions_are_refused_before_anything_is_written(tmp_path: Path, host: StandaloneHost,
                                                                tiny_tagger_dir: Path) -> None:
    images = make_dataset(tmp_path / "data")
    picture(9, (70, 70)).save(tmp_path / "data" / "square.jpg")
    (tmp_path / "data" / "square.txt").write_bytes(b"hand written")
    result = tag_folder(host, tmp_path / "data", tiny_tagger_dir, TagRunOptions(mode="overwrite"))
    refused = {p.path.name: p.reason for p in result.problems}
    assert set(refused) == {"square.png", "square.jpg"}
    assert "shares the caption file square.txt with square.jpg" in refused["square.png"]
    assert (tmp_path / "data" / "square.txt").read_bytes() == b"hand written"
    assert result.tagged == len(images) - 1


def test_unreadable_captions_are_reported_and_untouched(tmp_path: Path, host: StandaloneHost,
                                                        tiny_tagger_dir: Path) -> None:
    images = make_dataset(tmp_path / "data")
    latin1 = images[0].with_suffix(".txt")
    latin1.write_bytes("café, smile".encode("latin-1"))
    result = tag_folder(host, tmp_path / "data", tiny_tagger_dir, TagRunOptions(mode="overwrite"))
    (problem,) = result.problems
    assert problem.path == images[0] and "not valid UTF-8" in problem.reason
    assert latin1.read_bytes() == "café, smile".encode("latin-1")
    assert result.tagged == len(images) - 1


def test_bad_options_are_refused(tmp_path: Path, host: StandaloneHost, tiny_tagger_dir: Path) -> None:
    with pytest.raises(ValueError, match="image extension"):
        TagRunOptions(caption_ext=".png")
    with pytest.raises(ValueError, match="mode must be"):
        TagRunOptions(mode="merge")
    with pytest.raises(FileNotFoundError):
        tag_folder(host, tmp_path / "missing", tiny_tagger_dir)


def test_cli_tags_a_folder_and_prints_a_summary(tmp_path: Path, tiny_tagger_dir: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    images = make_dataset(tmp_path / "data")
    (tmp_path / "data" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    code = cli_main(["tag", str(tmp_path / "data"), "--model", str(tiny_tagger_dir), "--trigger", "zkw",
                     "--threshold", "0.5", "--exclude", "smile, solo", "--batch-size", "2",
                     "--home", str(tmp_path / "home")])
    out = capsys.readouterr().out
    assert code == 1  # a problem was reported
    assert f"tagged {len(images)} of {len(images) + 1} image(s)" in out
    assert "broken.png:" in out and "1 problem(s)" in out
    caption = images[0].with_suffix(".txt").read_text(encoding="utf-8").split(", ")
    assert caption[0] == "zkw" and "smile" not in caption
    assert cli_main(["tag", "--list-models", "--home", str(tmp_path / "home")]) == 0
    assert "no taggers in" in capsys.readouterr().out
    assert cli_main(["tag", str(tmp_path / "data"), "--model", "nope", "--home", str(tmp_path)]) == 2


def test_download_fails_offline_with_a_clear_message(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-m", "lora_lab", "tag", "--download", "wd-vit-tagger-v3",
                          "--home", str(tmp_path / "home")], capture_output=True, text=True, env=env,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 2
    assert "could not download model.onnx from SmilingWolf/wd-vit-tagger-v3" in out.stderr
    assert "download model.onnx and selected_tags.csv from https://huggingface.co/" in out.stderr
    assert find_models(tmp_path / "home" / "models" / "taggers") == []
    with pytest.raises(TaggerError, match="unknown tagger"):
        download_model("wd-nonsense", tmp_path / "home" / "models")


def test_tagging_does_not_import_onnxruntime_until_a_model_loads() -> None:
    import subprocess
    import sys

    code = ("import sys, lora_lab.tagging, lora_lab.tagging.run, lora_lab.commands.tag; "
            "print('onnxruntime' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], env={**os.environ}, check=True)
    assert out.stdout.strip() == "False"


def test_tagging_from_the_cli_never_imports_torch(tiny_tagger_dir, tmp_path) -> None:
    """`python -m lora_lab tag` needs onnxruntime, not torch (~0.9 s and ~130 MB to import)."""
    import subprocess
    import sys

    from PIL import Image

    for i, colour in enumerate(["red", "blue"]):
        Image.new("RGB", (64, 64), colour).save(tmp_path / f"{i}.png")
    code = ("import sys; from lora_lab.cli import main; "
            f"rc = main(['tag', {str(tmp_path)!r}, '--model', {str(tiny_tagger_dir)!r}]); "
            "print('torch imported:', 'torch' in sys.modules); sys.exit(rc)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "torch imported: False" in run.stdout, run.stdout + run.stderr
    assert (tmp_path / "0.txt").is_file()
