"""Who may use this dashboard (docs/SECURITY.md), as a page sees it.

Outside class mode the gate is ui/gate.py, in front of the server `make run` starts: with a token asked for, no
session exists without the access cookie. This is the second line, for a server started without that gate
(`streamlit run dashboard.py --server.address 0.0.0.0`): served beyond loopback, or with $CNN_TOKEN set, a
session without the cookie sees only how to start the dashboard so that it asks for a token, and nothing else.

In class mode (a `[class]` table in the server's secrets, ui/signin.py) the sign-in is the gate: every address
shows only a door (sign in; not on the class's list; the class's settings are wrong) until a person the
class lists has signed in."""
from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from ui import signin
from ui.serve import TOKEN_ENV, cookie_name, cookie_value, is_loopback, matches, token


def served_beyond_loopback() -> bool:
    """True when the server listens on an address other machines may reach (make run ADDRESS=0.0.0.0)."""
    return not is_loopback(st.get_option("server.address") or "")


def granted() -> bool:
    """True when this session may use the dashboard as far as the token goes: in class mode (the sign-in decides,
    door()), when no token is asked for and the server is on loopback, or when the session brought the access
    cookie (ui/gate.py gave it for the token)."""
    if signin.class_mode():
        return True
    secret = token()
    if secret is None:
        return not served_beyond_loopback()
    return matches(st.context.cookies.get(cookie_name(st.get_option("server.port"))), cookie_value(secret))


def door() -> Callable[[], None] | None:
    """The page every address shows instead of the dashboard, or None when this session may come in: the token
    page without the token's access (granted()); in class mode, the sign-in until a person signs in, a refusal
    for an address the class does not list, or the class's settings' faults (nobody comes in then)."""
    if not granted():
        return sign_in
    if not signin.class_mode():
        return None
    try:
        rules = signin.policy()
    except ValueError as exc:          # the [class] table is wrong: say what, let nobody in
        return _closed(str(exc))
    if not _auth():
        return _closed("class mode signs people in through the [auth] table of the same secrets file (redirect_uri, "
                       "cookie_secret, client_id, client_secret, server_metadata_url), and there is none")
    if not st.user.get("is_logged_in"):
        return class_sign_in
    if rules.admits(st.user.get("email"), st.user.get("email_verified")) is None:
        return not_listed
    return None


def teaches() -> bool:
    """Whether the person signed in teaches this class (the Class page is theirs); False outside class mode."""
    person = signin.me()
    return person is not None and person.teacher


def sign_in() -> None:
    """The only page a session without access sees: how to start the dashboard so that it asks for a token."""
    st.title("CNN Trainer")
    address = st.get_option("server.address") or "0.0.0.0"
    st.error(f"This dashboard was started without its token gate ({TOKEN_ENV} set, or served beyond this "
             f"machine at address {address}), so it lets nobody in. Start it with `make run ADDRESS={address}`: "
             "it prints a URL with the token to open.", icon=":material/lock:")


def _auth():
    try:
        return st.secrets.get("auth")
    except FileNotFoundError:
        return None


def _provider() -> str | None:
    """The provider to sign in with: the one named provider of [auth] ([auth.school]), else None (the provider
    set in [auth] itself, or several named ones, when st.login chooses as Streamlit documents)."""
    named = [k for k, v in (_auth() or {}).items() if hasattr(v, "items")]
    return named[0] if len(named) == 1 else None


def class_sign_in() -> None:
    """Class mode, nobody signed in: every address shows this and nothing of the dashboard."""
    st.title("CNN Trainer")
    st.markdown("This dashboard belongs to a class: sign in with your school account.")
    if st.button("Sign in", type="primary", icon=":material/login:"):
        if provider := _provider():
            st.login(provider)
        else:
            st.login()


def not_listed() -> None:
    """Class mode, signed in with an address the class does not list."""
    from ui import views

    st.title("CNN Trainer")
    st.error(f"{views.md(st.user.get('email') or 'This account')} is not on this class's list, so this dashboard is "
             "not open to it. Sign out and sign in with your school account, or ask your teacher to add you.",
             icon=":material/block:")
    if st.button("Sign out", icon=":material/logout:"):
        st.logout()


def _closed(why: str) -> Callable[[], None]:
    def class_settings_wrong() -> None:
        from ui import views

        st.title("CNN Trainer")
        st.error(f"This dashboard lets nobody in: {views.md(why)}. Its teacher fixes the secrets file and starts "
                 "it again.", icon=":material/lock:")
    return class_settings_wrong
