"""Who may use this dashboard (docs/SECURITY.md). Served on loopback, this machine's user: the server answers
only to its own host names (ui/serve.py), so a web page rebound to 127.0.0.1 cannot drive it. Served beyond
loopback (or whenever $CNN_TOKEN is set), a session sees nothing but how to get in until it brings the
token: in the URL printed at start (?token=..., taken out of the address bar once read), typed on the page,
or the cookie its browser got with it (this host and port only, 30 days)."""
from __future__ import annotations

import hashlib
import hmac
import os

import streamlit as st

from ui.serve import TOKEN_ENV, is_loopback

_GRANTED = "access.granted"
_TYPED = "access.typed"
_SET_COOKIE = "access.set_cookie"
COOKIE_DAYS = 30


def served_beyond_loopback() -> bool:
    """True when the server listens on an address other machines may reach (make run ADDRESS=0.0.0.0)."""
    return not is_loopback(st.get_option("server.address") or "")


def _token() -> str | None:
    return os.environ.get(TOKEN_ENV) or None


def _required() -> bool:
    return _token() is not None or served_beyond_loopback()


def _cookie_name() -> str:
    return f"cnn_access_{st.get_option('server.port')}"


def _cookie_value(token: str) -> str:
    """What the browser keeps: a keyed hash of the token (the token itself never sits in a cookie)."""
    return hmac.new(token.encode(), b"cnn-dashboard access cookie", hashlib.sha256).hexdigest()


def _matches(given: str | None, token: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), token.encode())


def granted() -> bool:
    """True when this session may use the dashboard; a token in the URL is taken in (and out of the URL)."""
    if not _required() or st.session_state.get(_GRANTED):
        _remember()
        return True
    token = _token()
    if token is None:                   # served beyond loopback with no token: nobody gets in
        return False
    if _matches(st.query_params.get("token"), token):
        del st.query_params["token"]
        st.session_state[_GRANTED] = st.session_state[_SET_COOKIE] = True
    elif _matches(st.context.cookies.get(_cookie_name()), _cookie_value(token)):
        st.session_state[_GRANTED] = True
    _remember()
    return bool(st.session_state.get(_GRANTED))


def _remember() -> None:
    """Right after the token came in: give this browser the cookie that lets it in next time."""
    if st.session_state.pop(_SET_COOKIE, False):
        cookie = (f"{_cookie_name()}={_cookie_value(_token())}; path=/; max-age={COOKIE_DAYS * 86400}; "
                  "SameSite=Strict")
        st.html(f"<script>document.cookie = {cookie!r};</script>", unsafe_allow_javascript=True)


def _check_typed() -> None:
    if _matches(st.session_state.get(_TYPED, "").strip(), _token() or ""):
        st.session_state[_GRANTED] = st.session_state[_SET_COOKIE] = True
    st.session_state[_TYPED] = ""


def sign_in() -> None:
    """The only page a session without the token sees: how to get in."""
    st.title("CNN Trainer")
    address, port = st.get_option("server.address") or "0.0.0.0", st.get_option("server.port")
    if _token() is None:
        st.error(f"This dashboard is served beyond this machine (address {address}) with no token, so it lets "
                 "nobody in. Start it with `make run ADDRESS=...`, which prints a URL with a new token, or set "
                 f"{TOKEN_ENV} to a secret of your own before starting it.", icon=":material/lock:")
        return
    st.info("This dashboard is open to other machines, so it asks for its token. Open the URL printed where it "
            f"was started (`make run ADDRESS={address}` prints `http://HOST:{port}/?token=...`), or paste the "
            "token here.", icon=":material/lock:")
    typed = st.session_state.get(_TYPED)
    st.text_input("Token", type="password", key=_TYPED, on_change=_check_typed)
    if typed == "" and not st.session_state.get(_GRANTED):
        st.error("That is not this dashboard's token.")
