"""The dashboard's pages, links between them, and the shared sidebar."""
from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

ROOT = Path(__file__).resolve().parent.parent
_PAGES = {  # name: (file, title, icon, default)
    "home": ("home.py", "Home", ":material/home:", True),
    "train": ("train.py", "Train", ":material/model_training:", False),
    "inspect": ("inspect.py", "Inspect", ":material/biotech:", False),
    "compare": ("compare.py", "Compare", ":material/compare_arrows:", False),
    "draw": ("draw.py", "Draw", ":material/draw:", False),
}


def page(name: str, content=None) -> st.Page:
    """The st.Page of `name` (home, train, inspect, compare, draw); the same object st.navigation registers.
    content: a function shown at that page's address instead of the page (ui/access.py's sign_in)."""
    file, title, icon, default = _PAGES[name]
    return st.Page(content or ROOT / "pages" / file, title=title, icon=icon, url_path=None if default else name,
                   default=default)


def all_pages(content=None) -> list[st.Page]:
    return [page(name, content) for name in _PAGES]


_frame = threading.local()   # each session's script runs in its own thread


@contextlib.contextmanager
def framed():
    """dashboard.py runs the chosen page inside this block."""
    _frame.active = True
    try:
        yield
    finally:
        _frame.active = False


def ensure_frame() -> None:
    """First line of every page: make sure the page runs inside dashboard.py.

    Streamlit 1.67 quirk: with a pages/ folder beside dashboard.py, a server whose first request is
    a deep link (/train?run=...) runs pages/train.py directly in the old pages-folder mode: no
    dashboard.py, so no page config, no navigation of ours, no sidebar; and it stays in that mode
    for every session until someone opens '/'. Calling st.navigation switches the server to the
    st.navigation mode for good; the rerun then goes through dashboard.py to this same page, with
    its query parameters. A page run on its own (AppTest, `streamlit run pages/x.py`) is left alone.
    """
    if getattr(_frame, "active", False):
        return
    ctx = get_script_run_ctx()
    if ctx is None or Path(ctx.main_script_path).resolve() != ROOT / "dashboard.py":
        return
    st.navigation(all_pages(), position="hidden")
    st.rerun()


def link(name: str, label: str | None = None, run: str | None = None, help: str | None = None) -> None:
    """A link to a page, optionally opening one run there (?run=<id>)."""
    st.page_link(page(name), label=label, help=help, query_params={"run": run} if run else None)


@st.cache_resource(show_spinner=False)
def _device_text() -> tuple[str, str]:
    from cnn_core.core.devices import describe_device  # torch: loaded once per server process

    info = describe_device()
    return info.kind, info.label


def sidebar() -> None:
    """Where training runs and where files live; drawn after the page so the page shows first."""
    from cnn_core.data import catalog
    from cnn_core.runs import store

    with st.sidebar:
        kind, label = _device_text()
        st.markdown(f"**Device** · {kind}  \n{label}")
        st.markdown(f"**Runs folder**  \n`{store.default_runs_dir().resolve()}`")
        st.markdown(f"**Data folder**  \n`{catalog.default_data_dir()}`")
        if os.environ.get("CNN_OFFLINE") == "1":
            st.caption("Offline mode (CNN_OFFLINE=1): datasets come from local files and packages only.")


def flash(where: str, kind: str, text: str) -> None:
    """A message (kind: success, info, warning, error) shown once, at the next draw of `where`'s slot:
    what a button's callback or a rerun has to say to the page that follows."""
    st.session_state[f"{where}.flash"] = (kind, text)


def show_flash(where: str) -> None:
    """The message waiting for `where`, in a slot that is always there (so nothing below moves)."""
    slot = st.empty()
    kind, text = st.session_state.pop(f"{where}.flash", (None, None))
    if kind:
        getattr(slot, kind)(text)
