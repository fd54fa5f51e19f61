"""Natural-language captions from a host's interrogator, combined with the tags by a template.

The WebUI's interrogator (BLIP) cannot run here, so the host below answers with a sentence of its
own; what is under test is the combination, the journal and the undo."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lora_lab.dataset import actions
from lora_lab.host.progress import RecordingProgress
from lora_lab.hosts.standalone.host import StandaloneHost


class DescribingHost(StandaloneHost):
    def interrogate(self, image: Image.Image) -> str:
        return f"a {image.getpixel((0, 0))[0] > 128 and 'red' or 'dark'} square."


def test_sentences_join_tags_and_one_undo_reverts(tmp_path: Path) -> None:
    Image.new("RGB", (32, 32), "red").save(tmp_path / "a.png")
    Image.new("RGB", (32, 32), "black").save(tmp_path / "b.png")
    (tmp_path / "a.txt").write_bytes(b"ohwx, solo, smile\r\n")
    (tmp_path / "b.txt").write_bytes(b"ohwx, A dark room with a lamp. night")
    ref = actions.DatasetRef(tmp_path)
    host = DescribingHost(progress=RecordingProgress())
    assert actions.describe_with_host(host, ref) == 1  # b already has a sentence
    assert (tmp_path / "a.txt").read_bytes() == b"ohwx, A red square. solo, smile\r\n"
    assert actions.describe_with_host(host, ref, overwrite=True) == 1
    assert (tmp_path / "b.txt").read_text() == "ohwx, A dark square. night"
    actions.undo(ref)
    assert (tmp_path / "b.txt").read_text() == "ohwx, A dark room with a lamp. night"


def test_hosts_without_an_interrogator_say_so(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="interrogator"):
        actions.describe_with_host(StandaloneHost(), actions.DatasetRef(tmp_path))
