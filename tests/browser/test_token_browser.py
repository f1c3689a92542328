"""Served beyond loopback (`make run ADDRESS=0.0.0.0`, the README's command for a class or a second machine),
nobody uses the dashboard without the token printed at start, as with Jupyter. The server is started by
`make run`'s own command line; the browser reaches it on 127.0.0.1, one of the names it answers to."""
from __future__ import annotations

import re

from browserkit import SHOTS, chromium_page, dashboard_server
from playwright.sync_api import expect

HOW_TO_GET_IN = "asks for its token"


def _printed_token(log) -> str:
    """The token in the URL the server printed where it was started."""
    found = re.search(r"http://\S+:(\d+)/\?token=([\w-]+)", log.read_text())
    assert found, log.read_text()[-2000:]
    return found.group(2)


def test_beyond_loopback_every_page_wants_the_token(small_data_dir, runs_dir, tmp_path):
    """Without the token, Home and deep links show only the form for it (no Streamlit page at all), a wrong
    token says so; the printed URL lets the browser in and leaves the address bar without the token; its
    cookie lets it back in later; a second browser typing the token gets the page it asked for."""
    with dashboard_server(small_data_dir, runs_dir, tmp_path, address="0.0.0.0") as base:
        token = _printed_token(base.log)
        assert len(token) >= 32
        with chromium_page() as page:
            for path in ("/", "/train", "/compare?run=x"):
                page.goto(base + path)
                expect(page.get_by_text(HOW_TO_GET_IN)).to_be_visible()
                assert page.locator("[data-testid]").count() == 0     # no element of Streamlit's
            page.get_by_label("Token").fill("not-the-token")
            page.keyboard.press("Enter")
            expect(page.get_by_text("That is not this dashboard's token.")).to_be_visible()
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "token-asked.png"))

            page.goto(f"{base}/?token={token}")
            expect(page.get_by_text("Recent runs")).to_be_visible(timeout=60_000)
            expect(page).not_to_have_url(re.compile("token="))
            page.goto(base + "/train")                    # a new session: the cookie lets it in
            expect(page.get_by_role("tab", name="New run")).to_be_visible(timeout=60_000)
        with chromium_page() as other:                    # another browser, no cookie
            other.goto(base + "/compare?run=x")
            expect(other.get_by_text(HOW_TO_GET_IN)).to_be_visible()
            other.get_by_label("Token").fill(token)
            other.keyboard.press("Enter")
            expect(other.get_by_role("heading", name="Compare")).to_be_visible(timeout=60_000)
            expect(other).to_have_url(re.compile(r"/compare\?run=x$"))
