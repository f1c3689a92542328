"""What the dashboard exposes: the server listens on loopback only, as `make run` starts it, and no page
turns a URL query parameter into a file path outside the runs and data folders."""
from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest
from browserkit import dashboard_server
from pagekit import page_file, shown
from streamlit.testing.v1 import AppTest
from test_draw_page import fake_run

from cnn_core.analysis import predict
from cnn_core.runs import store

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 90
LISTEN = "0A"    # TCP state in /proc/net/tcp*


def test_config_binds_the_server_to_loopback():
    """.streamlit/config.toml (read by every `streamlit run` from the repo root) sets server.address 127.0.0.1."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"


def test_make_run_binds_loopback_unless_told_otherwise():
    """`make run` serves on $(ADDRESS) through ui/serve.py, which passes it as --server.address to `streamlit
    run ui/gate.py` (dashboard.py behind the token gate); ADDRESS defaults to 127.0.0.1."""
    from ui import serve

    make = (ROOT / "Makefile").read_text()
    assert "ADDRESS ?= 127.0.0.1" in make.splitlines()
    recipe = make.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "-m ui.serve" in recipe and "--address $(ADDRESS)" in recipe
    argv = serve.command(8501, "10.1.2.3", ["localhost"])
    assert argv[2:4] == ["streamlit", "run"] and argv[4].endswith("ui/gate.py")
    assert argv[argv.index("--server.address") + 1] == "10.1.2.3"


def _listening(port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Local addresses of the sockets listening on `port`, from /proc/net/tcp and /proc/net/tcp6."""
    found = []
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr_hex, port_hex = local.split(":")
            if int(port_hex, 16) != port or state != LISTEN:
                continue
            raw = bytes.fromhex(addr_hex)           # stored as 32-bit words in host (little-endian) order
            addr = b"".join(raw[i:i + 4][::-1] for i in range(0, size, 4))
            found.append(ipaddress.ip_address(addr))
    return found


def _outside_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (hostname -I, else the host name's address)."""
    names = []
    if shutil.which("hostname"):
        names = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    names.append(socket.gethostbyname(socket.gethostname()))
    ips = {ipaddress.ip_address(a) for a in names}
    return sorted(str(a) for a in ips if a.version == 4 and not a.is_loopback)


def test_make_run_server_listens_on_loopback_only(small_data_dir, runs_dir, tmp_path):
    """`streamlit run dashboard.py --server.port P` with no --server.address (typed
    by hand, or `make run` before it passed ADDRESS): config.toml alone binds it. /_stcore/health answers
    on 127.0.0.1, every socket listening on P is bound to a loopback address (/proc/net/tcp*), and a
    connection to this machine's own outside address is refused."""
    with dashboard_server(small_data_dir, runs_dir, tmp_path, address=None) as base:
        assert urllib.request.urlopen(f"{base}/_stcore/health", timeout=5).read() == b"ok"
        port = int(base.rsplit(":", 1)[1])
        bound = _listening(port)
        assert bound and all(a.is_loopback for a in bound), bound
        for ip in _outside_addresses():
            with socket.socket() as s, pytest.raises(OSError):
                s.settimeout(2)
                s.connect((ip, port))
    assert "0.0.0.0" not in (tmp_path / "streamlit.log").read_text()


# ---- query parameters -----------------------------------------------------------------------------
_RECORD: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    """Every file opened or folder listed while a page runs (sys.addaudithook: open, os.listdir, os.scandir)."""
    if _RECORD is not None and event in ("open", "os.listdir", "os.scandir") and args:
        if isinstance(args[0], (str, bytes, os.PathLike)):      # normalized: runs/../sentinel is the sentinel
            _RECORD.append(os.path.abspath(os.fsdecode(args[0])))


sys.addaudithook(_audit)   # process-wide and permanent: one attribute read per event when not recording

HOSTILE = ["../sentinel", "SENTINEL", "/etc/passwd", "../../../../etc/passwd", "x\x00y", "..", "a/b/../../.."]


@pytest.fixture
def world(runs_dir):
    """A good run in the runs folder and a sentinel run folder beside it (what a '../' would reach)."""
    good = fake_run(runs_dir)
    sentinel = fake_run(runs_dir.parent / "beside")
    sentinel = sentinel.rename(runs_dir.parent / "sentinel")
    return good, sentinel


@pytest.mark.parametrize("page", ["home.py", "train.py", "inspect.py", "compare.py", "draw.py"])
def test_hostile_query_parameters_read_nothing_outside(page, world, monkeypatch, tmp_path):
    """?run= set to a '../', an absolute path, a NUL, ...: the page renders, says so or falls back to a run
    of the runs folder, and no file or folder outside the runs and data folders is opened (audit hook);
    the library's run lookups refuse each value with ValueError."""
    global _RECORD
    good, sentinel = world
    monkeypatch.setattr(predict, "BUNDLED_MNIST", tmp_path / "no-bundled-model")   # Draw lists the good run only
    at = AppTest.from_file(page_file(page), default_timeout=TIMEOUT)
    for value in HOSTILE:
        value = str(sentinel) if value == "SENTINEL" else value
        at.query_params["run"] = value
        _RECORD = []
        try:
            at.run()
        finally:
            opened, _RECORD = _RECORD, None
        assert not at.exception, (value, [e.value for e in at.exception])
        assert at.title and at.title[0].value, value
        assert not [p for p in opened if p.startswith(str(sentinel)) or p.startswith("/etc/passwd")], (value, opened)
        warnings = "\n".join(shown(w.value) for w in at.warning)
        if page == "inspect.py":
            assert f"There is no run {value[:100]!r} in the runs folder" in warnings, (value, warnings)
            assert at.selectbox(key="inspect.run").value == good.name and at.query_params["run"] == good.name
        elif page == "train.py":
            assert at.selectbox(key="train.watch").value == good.name and at.query_params["run"] == good.name
        for lookup in (store.run_dir, store.resolve_run):
            with pytest.raises(ValueError):
                lookup(value)
    assert (sentinel / store.RUN_JSON).is_file() and (sentinel / store.BEST).is_file()
