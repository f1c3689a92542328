"""Shared fixtures: small generated datasets in the real file formats, and an empty runs folder."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from datagen import write_cifar_dataset, write_idx_dataset

ARTIFACTS = ROOT / "artifacts"   # screenshots and other files a person looks at after the run


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory) -> Path:
    """A data folder holding generated, learnable mnist, fashion-mnist and cifar10 in their real formats."""
    root = tmp_path_factory.mktemp("data")
    write_idx_dataset(root / "mnist", n_train=600, n_test=200, seed=1)
    write_idx_dataset(root / "fashion-mnist", n_train=600, n_test=200, seed=2)
    write_cifar_dataset(root / "cifar10", n_per_batch=60, n_test=200, seed=3)
    from cnn_core.data import catalog

    os.environ.setdefault("CNN_OFFLINE", "1")
    for name in ("mnist", "fashion-mnist", "cifar10", "cifar2"):
        catalog.prepare(name, data_dir=root)   # caches built once per session, as `make data` does
    return root


@pytest.fixture(autouse=True)
def _isolated_env(small_data_dir, tmp_path, monkeypatch):
    """Every test sees the small data folder, an empty runs folder, and no network download."""
    monkeypatch.setenv("CNN_DATA_DIR", str(small_data_dir))
    monkeypatch.setenv("CNN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CNN_OFFLINE", "1")
    monkeypatch.setenv("CNN_MAX_JOBS", "2")
    yield


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    return Path(os.environ["CNN_RUNS_DIR"])


@pytest.fixture
def real_mnist(monkeypatch) -> Path:
    """The project's real MNIST subset (`make data`) as the data folder instead of the generated digits;
    skipped, with the reason, where it is not prepared."""
    from cnn_core.data import catalog

    real = Path(__file__).resolve().parent.parent / "data"
    if catalog.dataset_status("mnist", real).state == "missing":
        pytest.skip(f"the real MNIST subset is not prepared in {real} (`make data` or `make test` prepares it)")
    monkeypatch.setenv("CNN_DATA_DIR", str(real))
    return real


@pytest.fixture
def ray_cluster(tmp_path):
    """A Ray cluster of its own (a head node with 2 CPUs, `ray start --head --block`), as a person starts
    one; its address. Stopped with its process group (not `ray stop`, which stops every Ray here)."""
    pytest.importorskip("ray")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    head = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
                             "--port", str(port), "--num-cpus", "2", "--include-dashboard=false",
                             "--disable-usage-stats"], stdout=(tmp_path / "ray.log").open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(head.pid, signal.SIGKILL)        # all of it: its GCS, raylet and workers (a test's data only)
        head.wait(30)
