"""The dashboard as `make run` serves it (ui/serve.py starts `streamlit run ui/gate.py`): dashboard.py as an
ASGI app (st.App), behind a token gate when a token is asked for (docs/SECURITY.md).

With a token, every request but the health check must bring the cookie a browser gets with the token, as
Jupyter does: the WebSocket is refused without it (no session, so no page runs, no upload lands), and a
page asked for shows a small form for the token instead. The URL printed at start (?token=...) sets the
cookie (HttpOnly, SameSite=Strict, this host and port, 30 days) and is redirected without the token.
Without a token (served on loopback, or in class mode, where ui/serve.py asks for none: the sign-in is the
gate, ui/access.py), requests pass untouched.
"""
from __future__ import annotations

import html
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:       # `streamlit run ui/gate.py` puts ui/ on the path, not the project
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.requests import HTTPConnection  # noqa: E402
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse  # noqa: E402

from ui.serve import cookie_name, cookie_value, matches, token  # noqa: E402

OPEN_PATHS = ("/_stcore/health", "/healthz")     # say only "ok": a supervisor may ask without the token
COOKIE_DAYS = 30


class TokenGate:
    """ASGI middleware: with a token set, a request passes only with the access cookie (or the health check)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        secret = token()
        if secret is None or scope["type"] not in ("http", "websocket") or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        conn = HTTPConnection(scope)
        port = st.get_option("server.port")            # the cookie's name, as ui/access.py reads it
        if matches(conn.cookies.get(cookie_name(port)), cookie_value(secret)):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":     # refused at the handshake (HTTP 403): no session is made
            return await send({"type": "websocket.close", "code": 1008})
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        given = query.pop("token", None)
        if given is not None and matches(given, secret):
            rest = f"?{urlencode(query)}" if query else ""
            response = RedirectResponse(scope["path"] + rest, status_code=303)
            response.set_cookie(cookie_name(port), cookie_value(secret), max_age=COOKIE_DAYS * 86400, path="/",
                                httponly=True, samesite="strict")
        elif scope["method"] == "GET":
            response = HTMLResponse(_page(query, wrong=given is not None), status_code=401)
        else:
            response = PlainTextResponse("This dashboard asks for its token.", status_code=401)
        return await response(scope, receive, send)


def _page(query: dict, wrong: bool) -> str:
    """How to get in: the form that sends the token (the address bar keeps it only until the redirect) with the
    rest of the query asked for (?run=...), escaped."""
    error = '<p class="wrong" role="alert">That is not this dashboard\'s token.</p>' if wrong else ""
    kept = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in query.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>CNN Trainer: token</title>
<style>
 body {{ font-family: "Source Sans Pro", sans-serif; color: #31333f; max-width: 46rem; margin: 4rem auto;
        padding: 0 1rem; line-height: 1.5; }}
 h1 {{ font-size: 2.4rem; margin-bottom: 1rem; }}
 .info {{ background: #e8f0fe; color: #1c3f94; border-radius: .5rem; padding: 1rem; }}
 label {{ display: block; margin: 1.2rem 0 .3rem; font-size: .9rem; }}
 input {{ width: 100%; box-sizing: border-box; font-size: 1rem; padding: .5rem; border: 1px solid #ccc;
         border-radius: .5rem; }}
 button {{ margin-top: .8rem; font-size: 1rem; padding: .45rem 1rem; border-radius: .5rem; border: 0;
          background: #2e7d32; color: white; }}
 .wrong {{ background: #fdecea; color: #8a1c1c; border-radius: .5rem; padding: .8rem 1rem; }}
 code {{ font-size: .85em; }}
</style></head>
<body><h1>CNN Trainer</h1>
<p class="info">This dashboard is open to other machines, so it asks for its token. Open the URL printed where it
was started (<code>make run ADDRESS=...</code> prints <code>http://HOST:PORT/?token=...</code>), or paste the token
here.</p>
<form method="get">{kept}<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="off" autofocus required>
<button type="submit">Open the dashboard</button></form>
{error}
</body></html>"""


app = st.App(str(ROOT / "dashboard.py"), middleware=[Middleware(TokenGate)])
