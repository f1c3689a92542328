"""Who may use this dashboard (docs/SECURITY.md), as a page sees it. The gate is ui/gate.py, in front of the
server `make run` starts: with a token asked for, no session exists without the access cookie. This is the
second line, for a server started without that gate (`streamlit run dashboard.py --server.address 0.0.0.0`):
served beyond loopback, or with $CNN_TOKEN set, a session without the cookie sees only how to start the
dashboard so that it asks for a token, and nothing else."""
from __future__ import annotations

import streamlit as st

from ui.serve import TOKEN_ENV, cookie_name, cookie_value, is_loopback, matches, token


def served_beyond_loopback() -> bool:
    """True when the server listens on an address other machines may reach (make run ADDRESS=0.0.0.0)."""
    return not is_loopback(st.get_option("server.address") or "")


def granted() -> bool:
    """True when this session may use the dashboard: no token is asked for and the server is on loopback, or
    the session brought the access cookie (ui/gate.py gave it for the token)."""
    secret = token()
    if secret is None:
        return not served_beyond_loopback()
    return matches(st.context.cookies.get(cookie_name(st.get_option("server.port"))), cookie_value(secret))


def sign_in() -> None:
    """The only page a session without access sees: how to start the dashboard so that it asks for a token."""
    st.title("CNN Trainer")
    address = st.get_option("server.address") or "0.0.0.0"
    st.error(f"This dashboard was started without its token gate ({TOKEN_ENV} set, or served beyond this "
             f"machine at address {address}), so it lets nobody in. Start it with `make run ADDRESS={address}`: "
             "it prints a URL with the token to open.", icon=":material/lock:")
