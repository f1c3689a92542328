"""Who can reach the dashboard (docs/SECURITY.md): a web page rebound to 127.0.0.1 cannot open its WebSocket
(DNS rebinding), whichever README command started the server; the host list follows `make run ADDRESS=`;
served beyond loopback, the server asks for a token (the browser side: tests/browser/test_token_browser.py)."""
from __future__ import annotations

import base64
import os
import re
import socket
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from browserkit import dashboard_server

ROOT = Path(__file__).resolve().parents[2]


def handshake(base: str, host: str, cookie: str = "") -> str:
    """The status line the server answers to a browser's WebSocket handshake sent with this Host header (and
    the matching Origin, as a page served from that name sends), and this Cookie header if any."""
    port = int(base.rsplit(":", 1)[1])
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}:{port}\r\nOrigin: http://{host}:{port}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: streamlit\r\n"
               + (f"Cookie: {cookie}\r\n" if cookie else "") + "\r\n")
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


def _http(url: str, method: str = "GET") -> tuple[int, dict, str]:
    """(status, headers, body) of one request, redirects not followed."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(urllib.request.Request(url, method=method,
                                                                                  data=b"" if method == "PUT" else None),
                                                          timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def test_beyond_loopback_nothing_but_the_health_check_answers_without_the_token(small_data_dir, runs_dir,
                                                                                 tmp_path):
    """`make run ADDRESS=0.0.0.0` with CNN_TOKEN and CNN_ALLOWED_HOSTS set: the printed URL carries the token;
    without its cookie the WebSocket is refused (no session: no page runs, no upload lands), a page is the
    form for the token and an upload is refused; the token sets an HttpOnly, SameSite=Strict cookie and is
    taken out of the URL; with the cookie, this machine's name and the extra name get the WebSocket and a
    rebound name still does not."""
    token = "the-tests-own-token-0123456789abcdef"
    with dashboard_server(small_data_dir, runs_dir, tmp_path, address="0.0.0.0", CNN_TOKEN=token,
                          CNN_ALLOWED_HOSTS="dash.example") as base:
        port = base.rsplit(":", 1)[1]
        assert re.search(rf"http://\S+:{port}/\?token={token}\n", base.log.read_text()), base.log.read_text()
        assert " 101 " not in handshake(base, "127.0.0.1")
        status, _, body = _http(f"{base}/train?run=x")
        assert status == 401 and "asks for its token" in body and "streamlit" not in body.lower()
        assert _http(f"{base}/_stcore/upload_file/s/f", "PUT")[0] == 401
        health = _http(f"{base}/_stcore/health")
        assert (health[0], health[2]) == (200, "ok")
        status, _, body = _http(f"{base}/?token=wrong&run=%22%3E%3Cscript%3Ealert(1)%3C/script%3E")
        assert status == 401 and "not this dashboard's token" in body and "<script>" not in body
        status, headers, _ = _http(f"{base}/train?run=x&token={token}")
        assert status == 303 and headers["location"] == "/train?run=x"
        cookie = headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and token not in cookie
        cookie = cookie.split(";", 1)[0]
        for good in ("127.0.0.1", socket.gethostname(), "dash.example", "DASH.example"):
            assert " 101 " in handshake(base, good, cookie), good
        for evil in ("evil.example", "dash.example.evil.example"):
            assert " 101 " not in handshake(base, evil, cookie), evil


def test_a_page_started_without_the_gate_lets_nobody_in(monkeypatch):
    """dashboard.py on loopback opens at once; with CNN_TOKEN set but no gate in front (AppTest runs the script
    as `streamlit run dashboard.py` would), every session sees only how to start it with `make run`."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60).run()
    assert [t.value for t in at.title] == ["CNN Trainer"] and "Device" in str(at.sidebar.markdown[0].value)
    monkeypatch.setenv("CNN_TOKEN", "t0ken-set-by-the-owner")
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60).run()
    assert "lets nobody in" in at.error[0].value and "make run ADDRESS=" in at.error[0].value
    assert not at.sidebar.markdown and not at.button and not at.text_input
