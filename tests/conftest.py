"""Shared fixtures: tiny models built once per test session with the project's own builders."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("tier2") is None and item.get_closest_marker("tier3") is None:
            item.add_marker(pytest.mark.tier1)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny-model ops take microseconds: on a 2-core machine shared with other work, thread
    hand-offs cost more than the ops (up to 100x here)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    previous = os.environ.get("LORA_LAB_THREADS")
    os.environ["LORA_LAB_THREADS"] = "1"  # the standalone host's thread tuner keeps to it too
    yield
    torch.set_num_threads(threads)
    if previous is None:
        os.environ.pop("LORA_LAB_THREADS", None)
    else:
        os.environ["LORA_LAB_THREADS"] = previous


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lora_lab.devtools.tiny_model import build_tiny_model

    out = tmp_path_factory.mktemp("tiny-model")
    build_tiny_model(out)
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_model_dir: Path) -> Path:
    return tiny_model_dir / "tiny-sd1.safetensors"


@pytest.fixture(scope="session")
def standalone_host(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):
    """One loaded standalone host for the session; tests must leave its model as they found it."""
    return _loaded_host(tiny_checkpoint, tmp_path_factory.mktemp("lora-lab-home"))


def _loaded_host(checkpoint: Path, home: Path):
    from lora_lab.host.progress import RecordingProgress
    from lora_lab.hosts.standalone.host import StandaloneHost

    host = StandaloneHost(checkpoint, home=home, progress=RecordingProgress())
    host.model_parts()
    return host


@pytest.fixture(scope="session")
def tiny_sd2_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SD2 model with v-prediction (the SD2.x 768-v kind), OpenCLIP text encoder."""
    from lora_lab.devtools.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-sd2"), "sd2-v")


@pytest.fixture(scope="session")
def sd2_host(tiny_sd2_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):
    return _loaded_host(tiny_sd2_checkpoint, tmp_path_factory.mktemp("lora-lab-home-sd2"))


@pytest.fixture(scope="session")
def tiny_tagger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lora_lab.devtools.tiny_tagger import build_tiny_tagger

    return build_tiny_tagger(tmp_path_factory.mktemp("tiny-tagger"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep LoRA Lab's cache (e.g. the CLIP-L tokenizer files) out of the user's home."""
    if "LORA_LAB_CACHE" not in os.environ:
        monkeypatch.setenv("LORA_LAB_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory):
    """Debian's headless chromium through its own chromedriver (selenium downloads nothing)."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium and chromium-driver (.ci/run does)")
        pytest.skip("Debian chromium/chromium-driver not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic", "--window-size=1280,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def webui_sources() -> Path:
    """The WebUI's source archives (what dev/webui.sh builds from)."""
    return Path(os.environ.get("LORA_LAB_WEBUI_SRC") or ROOT.parent / "shared" / "webui-src")


@pytest.fixture(scope="session")
def sgm(tmp_path_factory: pytest.TempPathFactory):
    """The real `sgm` (SDXL): from LORA_LAB_SGM / LORA_LAB_WEBUI's repositories, else extracted from
    the generative-models archive in ../shared/webui-src; skipped with the reason when neither exists."""
    import tarfile

    from lora_lab.hosts.standalone.sgm_import import import_sgm, sgm_root

    root = sgm_root()
    archives = sorted(webui_sources().glob("generative-models-*.tar.gz"))
    if root is None and archives:
        out = tmp_path_factory.mktemp("sgm")
        with tarfile.open(archives[0]) as tar:
            tar.extractall(out, filter="data")
        root = sgm_root(checkout=out / "generative-models")
    if root is None:
        pytest.skip("no sgm: set LORA_LAB_WEBUI (bash dev/webui.sh DIR) or LORA_LAB_SGM, or provide "
                    f"{webui_sources()}/generative-models-*.tar.gz")
    return import_sgm(root)


@pytest.fixture(scope="session")
def tiny_sdxl_checkpoint(sgm, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SDXL model (sgm DiffusionEngine: CLIP-L-like + OpenCLIP text towers)."""
    from pathlib import Path as _Path

    from lora_lab.devtools.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-sdxl"), "sdxl", _Path(sgm.__file__).parents[1])


@pytest.fixture(scope="session")
def sdxl_host(tiny_sdxl_checkpoint: Path, sgm, tmp_path_factory: pytest.TempPathFactory):
    from lora_lab.host.progress import RecordingProgress
    from lora_lab.hosts.standalone.host import StandaloneHost

    host = StandaloneHost(tiny_sdxl_checkpoint, home=tmp_path_factory.mktemp("lora-lab-home-sdxl"),
                          progress=RecordingProgress(), sgm_root=Path(sgm.__file__).parents[1])
    host.model_parts()
    return host


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Two captioned squares in a `5_ohwx` folder (the host tiers' training data; a module's own
    `dataset` fixture takes precedence)."""
    from PIL import Image

    folder = tmp_path / "train" / "5_ohwx"
    folder.mkdir(parents=True)
    for i, colour in enumerate(["red", "orange"]):
        Image.new("RGB", (64, 64), colour).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text(f"ohwx, {colour} square")
    return folder.parent
