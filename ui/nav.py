"""The dashboard's pages, links between them, and the shared sidebar."""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

UI = Path(__file__).resolve().parent
# name (its address, /train): (its package under ui/, whose page.py it runs; title, icon, default). Streamlit
# knows the pages from st.navigation alone: with a folder named "pages" beside dashboard.py (its legacy
# auto-discovery) a server whose first request was a deep link ran that page's file without dashboard.py.
_PAGES = {
    "home": ("home", "Home", ":material/home:", True),
    "learn": ("learn", "Learn", ":material/school:", False),
    "train": ("train", "Train", ":material/model_training:", False),
    "inspect": ("inspector", "Inspect", ":material/biotech:", False),
    "compare": ("compare", "Compare", ":material/compare_arrows:", False),
    "draw": ("draw", "Draw", ":material/draw:", False),
    "class": ("classroom", "Class", ":material/groups:", False),
}
TEACHERS_ONLY = {"class"}      # in st.navigation for a teacher only: a learner's /class is an unknown page


def page(name: str, content=None) -> st.Page:
    """The st.Page of `name` (home, learn, train, inspect, compare, draw, class); the same object st.navigation
    registers. content: a function shown at that page's address instead of the page (ui/access.py's doors)."""
    package, title, icon, default = _PAGES[name]
    return st.Page(content or UI / package / "page.py", title=title, icon=icon, url_path=name, default=default)


def all_pages(content=None, teacher: bool = False) -> list[st.Page]:
    """The pages st.navigation offers: every address showing `content` when given (a door), else the pages,
    the teacher's among them for a teacher only."""
    return [page(name, content) for name in _PAGES if content or teacher or name not in TEACHERS_ONLY]


def link(name: str, label: str | None = None, run: str | None = None, help: str | None = None,
         runs: list[str] | None = None) -> None:
    """A link to a page, optionally opening one run there (?run=<id>), or several (Compare: ?runs=<id>,<id>)."""
    query = {"run": run} if run else {"runs": ",".join(runs)} if runs else None
    st.page_link(page(name), label=label, help=help, query_params=query)


@st.cache_resource(show_spinner=False)
def _device_text() -> tuple[str, str]:
    # torch: loaded once per server process
    from cnn_core.core.devices import describe_device, precision, resolve_device

    info = describe_device()
    auto = precision("auto", resolve_device())
    return info.kind, f"{info.label} · trains in {auto.label} by default"


def sidebar() -> None:
    """In class mode who is signed in, with Sign out; where training runs and where files live. Drawn after
    the page so the page shows first."""
    from cnn_core.data import catalog
    from cnn_core.runs import store
    from ui import signin, views

    with st.sidebar:
        if signin.class_mode():
            st.markdown(f"**Signed in**  \n{views.md(signin.who_text(signin.me()))}")    # an address: escaped
            if st.button("Sign out", icon=":material/logout:"):
                st.logout()
        kind, label = _device_text()
        st.markdown(f"**Device** · {kind}  \n{label}")
        st.markdown(f"**Runs folder**  \n`{store.default_runs_dir().resolve()}`")
        st.markdown(f"**Data folder**  \n`{catalog.default_data_dir()}`")
        if os.environ.get("CNN_OFFLINE") == "1":
            st.caption("Offline mode (CNN_OFFLINE=1): datasets come from local files and packages only.")


def flash(key: str, kind: str, text: str) -> None:
    """A message (kind: success, info, warning, error) shown once, at the next draw of the slot kept under
    session key `key` (a page's state names it): what a button's callback or a rerun has to say to the page
    that follows."""
    st.session_state[key] = (kind, text)


def show_flash(key: str) -> None:
    """The message waiting under `key`, in a slot that is always there (so nothing below moves)."""
    slot = st.empty()
    kind, text = st.session_state.pop(key, (None, None))
    if kind:
        getattr(slot, kind)(text)
