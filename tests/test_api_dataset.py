"""The /lora-lab/v1/dataset API on the standalone server, with the tiny tagger."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from lora_lab.host.progress import RecordingProgress
from lora_lab.hosts.standalone.host import StandaloneHost


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from lora_lab.hosts.standalone.app import Server

    host = StandaloneHost(home=tmp_path_factory.mktemp("home"), progress=RecordingProgress())
    running = Server(host, allow=[tmp_path_factory.getbasetemp()]).start()
    try:
        yield running.url + "lora-lab/v1"
    finally:
        running.stop()


def call(url: str, payload: dict | None = None) -> tuple[int, object]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    for i, colour in enumerate(["red", "blue", "green"]):
        Image.new("RGB", (80, 60), colour).save(tmp_path / f"img{i}.png")
    (tmp_path / "img0.txt").write_bytes(b"\xef\xbb\xbfhand written, tags\r\n")
    return tmp_path


def test_tag_job_then_edit_and_undo(server: str, dataset: Path, tiny_tagger_dir: Path) -> None:
    status, job = call(f"{server}/dataset/tag", {"folder": str(dataset), "model": str(tiny_tagger_dir),
                                                  "trigger": "ohwx", "mode": "skip"})
    assert status == 200 and job["kind"] == "tagging"
    deadline = time.time() + 60
    while job["running"] and time.time() < deadline:
        time.sleep(0.2)
        _, job = call(f"{server}/jobs/{job['id']}")
    assert not job["running"] and job["error"] is None
    assert job["result"]["tagged"] == 2 and len(job["result"]["skipped"]) == 1
    assert (dataset / "img0.txt").read_bytes() == b"\xef\xbb\xbfhand written, tags\r\n"  # skip mode
    assert (dataset / "img1.txt").read_text(encoding="utf-8-sig").startswith("ohwx, ")

    before = {p.name: p.read_bytes() for p in dataset.glob("*.txt")}
    body = {"folder": str(dataset), "tags": "solo_style", "at": "start"}
    status, result = call(f"{server}/dataset/captions/add", body)
    assert status == 200 and len(result["changed"]) == 3
    assert (dataset / "img0.txt").read_bytes() == b"\xef\xbb\xbfsolo_style, hand written, tags\r\n"
    status, _ = call(f"{server}/dataset/captions/undo", {"folder": str(dataset)})
    assert status == 200
    assert {p.name: p.read_bytes() for p in dataset.glob("*.txt")} == before
    _, history = call(f"{server}/dataset/captions/history", {"folder": str(dataset)})
    assert [h["undone"] for h in history][-1] is True


def test_bad_requests_get_reasons(server: str, tmp_path: Path) -> None:
    status, body = call(f"{server}/dataset/captions/shuffle", {"folder": str(tmp_path)})
    assert status == 400 and "unknown operation" in body["detail"]
    status, body = call(f"{server}/dataset/captions/add", {"folder": str(tmp_path / "nope"), "tags": "x"})
    assert status == 404 and "not found" in body["detail"]
    status, body = call(f"{server}/dataset/captions/undo", {"folder": str(tmp_path)})
    assert status == 400 and "nothing to undo" in body["detail"]


def test_plan_and_check(server: str, dataset: Path) -> None:
    status, plan = call(f"{server}/dataset/plan", {"folder": str(dataset), "epochs": 10})
    assert status == 200 and plan["total_steps"] > 0
    status, report = call(f"{server}/dataset/check", {"folder": str(dataset), "resolution": 512})
    assert status == 200 and len(report["images"]) == 3
