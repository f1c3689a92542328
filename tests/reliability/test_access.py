"""Who can reach the dashboard (docs/SECURITY.md): a web page rebound to 127.0.0.1 cannot open its WebSocket
(DNS rebinding), whichever README command started the server; the host list follows `make run ADDRESS=`;
served beyond loopback, the server asks for a token (the browser side: tests/browser/test_token_browser.py)."""
from __future__ import annotations

import base64
import os
import re
import socket
import tomllib
from pathlib import Path

import pytest

from browserkit import dashboard_server

ROOT = Path(__file__).resolve().parents[2]


def handshake(base: str, host: str) -> str:
    """The status line the server answers to a browser's WebSocket handshake sent with this Host header (and
    the matching Origin, as a page served from that name sends)."""
    port = int(base.rsplit(":", 1)[1])
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}:{port}\r\nOrigin: http://{host}:{port}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: streamlit\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request.encode())
        answer = s.recv(4096).decode("latin-1")
    return answer.split("\r\n", 1)[0]


@pytest.mark.parametrize("command", ["make run", "streamlit run dashboard.py"])
def test_a_rebound_page_cannot_open_the_websocket(command, small_data_dir, runs_dir, tmp_path):
    """Under either README command, a handshake with Host evil.example (a page whose DNS name now points at
    127.0.0.1) is refused, while the names the server is served under get 101 Switching Protocols."""
    address = "127.0.0.1" if command == "make run" else None
    with dashboard_server(small_data_dir, runs_dir, tmp_path, address=address) as base:
        for evil in ("evil.example", "127.0.0.1.evil.example", "localhost.evil.example"):
            assert " 101 " not in handshake(base, evil), evil
        for good in ("127.0.0.1", "localhost"):
            assert " 101 " in handshake(base, good), good


def test_config_lists_the_loopback_names_and_keeps_streamlits_checks():
    """.streamlit/config.toml (read by both README commands) names the loopback hosts and leaves Streamlit's
    XSRF and CORS protection on."""
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert set(server["allowedHosts"]) == {"localhost", "127.0.0.1", "::1"}
    assert server.get("enableXsrfProtection", True) and server.get("enableCORS", True)


def test_served_beyond_loopback_answers_to_this_machines_names_and_prints_the_token(small_data_dir, runs_dir,
                                                                                     tmp_path):
    """`make run ADDRESS=0.0.0.0` with CNN_TOKEN and CNN_ALLOWED_HOSTS set: this machine's name and the extra
    name get the WebSocket, a rebound name does not, and the URL printed at start carries that token."""
    token = "the-tests-own-token-0123456789abcdef"
    with dashboard_server(small_data_dir, runs_dir, tmp_path, address="0.0.0.0", CNN_TOKEN=token,
                          CNN_ALLOWED_HOSTS="dash.example") as base:
        for good in ("127.0.0.1", socket.gethostname(), "dash.example", "DASH.example"):
            assert " 101 " in handshake(base, good), good
        for evil in ("evil.example", "dash.example.evil.example"):
            assert " 101 " not in handshake(base, evil), evil
        port = base.rsplit(":", 1)[1]
        assert re.search(rf"http://\S+:{port}/\?token={token}\n", base.log.read_text()), base.log.read_text()


def test_on_loopback_no_token_is_asked_unless_one_is_set(monkeypatch):
    """Served on loopback the dashboard opens at once; with CNN_TOKEN set it shows only how to get in until the
    URL brings that token, which then leaves the URL."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60).run()
    assert [t.value for t in at.title] == ["CNN Trainer"] and "Device" in str(at.sidebar.markdown[0].value)
    monkeypatch.setenv("CNN_TOKEN", "t0ken-set-by-the-owner")
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60).run()
    assert "asks for its token" in at.info[0].value and not at.sidebar.markdown
    at.query_params["token"] = "wrong"
    at.run()
    assert "asks for its token" in at.info[0].value
    at.query_params["token"] = "t0ken-set-by-the-owner"
    at.run()
    assert not [i for i in at.info if "token" in i.value] and "token" not in at.query_params
    assert "Device" in str(at.sidebar.markdown[0].value)
