"""Class mode as the pages see it (cnn_core/core/people.py is the library's side; README's "For a class").

Class mode is on when the server's secrets (`.streamlit/secrets.toml`, or the file $CNN_SECRETS names) hold a
`[class]` table: then every page asks for a signed-in person (st.login, the school's OpenID Connect provider,
configured in the same file's `[auth]` as Streamlit documents), admitted by the class's allow-list. Off (no
`[class]`), nobody signs in and `me()` is None: the laptop dashboard, the administrator's.

Pages hand `me()` to every library call that changes something (`by=me()`) and show only what `visible`
lets through; the library checks the owner again, so a page that forgot would be refused, not obeyed.
"""
from __future__ import annotations

import streamlit as st

from cnn_core.core import people


def _class_table():
    try:
        return st.secrets.get("class")
    except FileNotFoundError:          # no secrets file at all: the laptop path
        return None


def policy() -> people.Policy | None:
    """The class's Policy, or None outside class mode. A wrong [class] table raises ValueError naming each bad
    setting (dashboard.py shows it and lets nobody in)."""
    table = _class_table()
    return None if table is None else people.Policy.from_dict(table)


def class_mode() -> bool:
    return _class_table() is not None


def me() -> people.Person | None:
    """Who this session acts as: None outside class mode (the administrator); in class mode the signed-in,
    admitted Person. A session not signed in or not admitted never reaches a page (dashboard.py), so a page
    calling this in class mode gets a Person; were it ever not so, a stranger is refused here."""
    rules = policy()
    if rules is None:
        return None
    user = st.user
    person = rules.admits(user.get("email"), user.get("email_verified")) if user.get("is_logged_in") else None
    if person is None:
        raise people.NotYours("Sign in with an address this class lists to do that.")
    return person


def who_text(person: people.Person | None) -> str:
    """The sidebar's line: who is signed in, and as what."""
    return "" if person is None else f"{person.email} · {'teacher' if person.teacher else 'learner'}"
