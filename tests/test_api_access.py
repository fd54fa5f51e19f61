"""The HTTP API reads and writes only inside the folders the user allowed (the WebUI's `--listen`
makes it reachable by anyone on the network): every route that takes a path answers 403 outside
them, symlinks and `..` included, and the message says how to allow a folder."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from lora_lab import access
from lora_lab.access import FolderAccess, PathNotAllowed
from lora_lab.host.progress import RecordingProgress
from lora_lab.hosts.standalone.host import StandaloneHost

from .test_api_dataset import call


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An allowed folder (with a dataset, and a symlink out) and a private one beside it."""
    allowed, private = tmp_path_factory.mktemp("allowed"), tmp_path_factory.mktemp("private")
    for folder in (allowed / "data", private):
        folder.mkdir(exist_ok=True)
        Image.new("RGB", (64, 64), "red").save(folder / "a.png")
        (folder / "a.txt").write_text("secret, tags", encoding="utf-8")
    os.symlink(private, allowed / "link-out")
    return {"allowed": allowed, "private": private}


@pytest.fixture(scope="module")
def api(places: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from lora_lab.hosts.standalone.app import Server

    host = StandaloneHost(home=tmp_path_factory.mktemp("home"), progress=RecordingProgress())
    running = Server(host, allow=[places["allowed"]]).start()
    try:
        yield running.url + "lora-lab/v1"
    finally:
        running.stop()


def outside_requests(p: Path) -> list[tuple[str, dict | None]]:
    folder = {"folder": str(p)}
    return [
        ("/dataset/tag", {**folder, "model": "tiny"}),
        *[(f"/dataset/captions/{op}", {**folder, "tags": "x"}) for op in ("add", "remove", "prune")],
        *[(f"/dataset/captions/{op}", folder) for op in ("undo", "redo", "history", "stats")],
        ("/dataset/captions/edit", {**folder, "image": "a.png", "text": "x"}),
        ("/dataset/plan", folder), ("/dataset/check", folder),
        ("/dataset/layout", {**folder, "train_dir": str(p / "train"), "name": "x"}),
        ("/train", {"dataset_dir": str(p), "name": "x"}),
        (f"/sweep/sweeps?folder={p}", None), (f"/sweep/manifest?path={p}", None),
        (f"/sweep/ratings?path={p}", None), ("/sweep/ratings", {"path": str(p), "ratings": {}}),
        (f"/sweep/hit-rates?path={p}", None), ("/sweep/promote", {"path": str(p), "final_name": "x"}),
        (f"/sweep/file?path={p}&name=a.png", None),
    ]


@pytest.mark.parametrize("how", ["plain", "dotdot", "symlink"])
def test_every_route_that_takes_a_path_refuses_folders_outside_the_allowed_ones(
        api: str, places: dict[str, Path], how: str) -> None:
    before = (places["private"] / "a.txt").read_bytes()
    target = {"plain": places["private"],
              "dotdot": places["allowed"] / "data" / ".." / ".." / places["private"].name,
              "symlink": places["allowed"] / "link-out"}[how]
    for route, body in outside_requests(target):
        status, answer = call(api + route, body)
        assert status == 403, (route, status, answer)
        assert "--allow-root" in str(answer["detail"]), route
    assert (places["private"] / "a.txt").read_bytes() == before
    assert not (places["private"] / ".lora_lab").exists()


def test_allowed_folders_still_work(api: str, places: dict[str, Path]) -> None:
    data = places["allowed"] / "data"
    status, _ = call(api + "/dataset/captions/add", {"folder": str(data), "tags": "ohwx", "at": "start"})
    assert status == 200
    assert (data / "a.txt").read_text(encoding="utf-8").startswith("ohwx, ")
    assert call(api + "/dataset/captions/undo", {"folder": str(data)})[0] == 200
    status, body = call(api + "/dataset/captions/edit",
                        {"folder": str(data), "image": "../../" + places["private"].name + "/a.png", "text": "x"})
    assert status == 403  # the image, not just the folder, must be inside


def test_a_folder_opened_in_the_tab_becomes_usable(api: str, tmp_path: Path) -> None:
    Image.new("RGB", (64, 64), "blue").save(tmp_path / "b.png")
    assert call(api + "/dataset/plan", {"folder": str(tmp_path)})[0] == 403
    access.remember(tmp_path)  # what the Dataset tab does with the folder the user enters
    assert call(api + "/dataset/plan", {"folder": str(tmp_path)})[0] == 200


def test_roots_follow_the_setting_and_resolve(tmp_path: Path) -> None:
    setting = {"text": ""}
    (tmp_path / "a" / "b").mkdir(parents=True)
    folder_access = FolderAccess(lambda: access.split_roots(setting["text"]), "see the setting")
    with pytest.raises(PathNotAllowed, match="see the setting"):
        folder_access.check(tmp_path / "a" / "b")
    setting["text"] = f"{tmp_path / 'a'}\n"
    assert folder_access.check(tmp_path / "a" / "b" / ".." / "b") == (tmp_path / "a" / "b").resolve()
    with pytest.raises(PathNotAllowed):
        folder_access.check(tmp_path / "a" / ".." / "c")
