"""Class mode in a real browser, signed in through a real OpenID Connect provider (README's "For a class").

The provider is oidc-provider-mock run in a thread: its authorize page is a form whose `sub` field is the
person (the e-mail claim is the sub). The dashboard is served by `make run`'s own command (browserkit), its
secrets file written in tmp_path and named by CNN_SECRETS: the test must not write into the checkout's
.streamlit, and a teacher keeps that file outside the checkout the same way. Every browser context is a person:
ada and bob (learners), eve (not on the list), the teacher. The browser uses the host `localhost` throughout,
the host of [auth] redirect_uri, so that the sign-in's cookies are sent back. Screenshots of the sign-in page
at 1440 and 400 px go to artifacts/screenshots/.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from browserkit import ARGS, CHROMIUM, SHOTS, fill, free_port, idle, open_train_form, training_dashboard
from playwright.sync_api import expect

ADA, BOB, EVE, TEACHER = "ada@school.test", "bob@school.test", "eve@elsewhere.test", "teacher@school.test"
LENET = "LeNet-style CNN (PyTorch MNIST example)"
DOOR = "This dashboard belongs to a class: sign in with your school account."     # the sign-in page's line
SECRETS = """[auth]
redirect_uri = "http://localhost:{port}/oauth2callback"
cookie_secret = "the-class-browser-test-cookie-secret-0123456789"
client_id = "cnn-dashboard"
client_secret = "the mock accepts any client"
server_metadata_url = "{provider}/.well-known/openid-configuration"

[class]
learners = ["@school.test"]
teachers = ["{teacher}"]
"""


@pytest.fixture(scope="module")
def provider():
    """A real OpenID Connect provider on a free port of localhost, in a thread; its base url."""
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def server(provider, small_data_dir, tmp_path_factory):
    """`make run` in class mode: (base url on localhost, runs folder, server log)."""
    port, here = free_port(), tmp_path_factory.mktemp("class-browser")
    secrets = here / "secrets.toml"        # CNN_SECRETS: never the checkout's .streamlit/secrets.toml
    secrets.write_text(SECRETS.format(port=port, provider=provider, teacher=TEACHER))
    runs_dir = here / "runs"
    with training_dashboard(small_data_dir, runs_dir, here, port=port, CNN_SECRETS=str(secrets),
                            CNN_MAX_JOBS="2") as base:
        yield base.replace("127.0.0.1", "localhost"), runs_dir, base.log


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def person(browser, width: int = 1440, height: int = 1100):
    """A fresh browser context (no cookies: nobody signed in) and its page."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(60_000)
    return context, context.new_page()


def sign_in(page, base: str, email: str) -> None:
    """Sign in as a person does: the dashboard's Sign in, the provider's form (sub = the address), back."""
    page.goto(base)
    page.get_by_role("button", name="Sign in").click()
    page.locator('input[name="sub"]').fill(email)         # the provider's authorize page
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(re.compile(re.escape(base) + r"/?(\?.*)?$"))


def launch(page, base: str, runs_dir: Path, email: str, name: str) -> Path:
    """A one-epoch LeNet run on the small MNIST, launched from Train's New run form; its folder, once run.json
    names it as `email`'s."""
    from cnn_core.runs import store

    open_train_form(page, base, "MNIST", LENET)
    fill(page, "spinbutton", "Epochs", "1")
    fill(page, "spinbutton", "Validation images", "100")
    fill(page, "spinbutton", "Batch size", "32")
    fill(page, "textbox", "Run name (optional)", name)
    page.get_by_role("button", name="Launch").first.click()
    page.get_by_role("tab", name="Live", selected=True).wait_for()
    deadline = time.monotonic() + 30
    while True:
        made = [r for r in store.readable(store.list_runs(runs_dir)) if r.name == name]
        if made:
            assert made[0].owner == email, made[0]
            return made[0].path
        assert time.monotonic() < deadline, f"{name} was not launched"
        time.sleep(0.2)


def completed(path: Path, timeout: float = 300):
    """The run's record once run.json says it completed."""
    from cnn_core.runs import store

    deadline = time.monotonic() + timeout
    while (record := store.read_run(path)).status != "completed":
        assert record.status not in ("failed", "cancelled"), (record.status, record.error)
        assert time.monotonic() < deadline, record.status
        time.sleep(0.5)
    return record


def test_sign_in_learners_outsider_and_teacher(server, browser):
    """(a) Nobody signed in: every address shows only the sign-in page. (b) ada signs in through the provider
    and launches a run from Train. (c) bob signs in and launches his; he does not see ada's run in Compare, and
    a deep link to it reads as an unknown run; the library refuses his rename of it, naming her. (d) eve, not
    on the list, is refused. (e) the teacher opens Class and sees both learners on the leaderboard."""
    from cnn_core.core import people
    from cnn_core.runs import store

    base, runs_dir, log = server
    assert "Class mode ([class] in " in log.read_text() and "token=" not in log.read_text()

    # (a) the sign-in page at every address, at a laptop's and a phone's width
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1440, 400):
        context, page = person(browser, width, 900)
        for path in ("/", "/train", "/compare?run=x", "/class"):
            page.goto(base + path)
            expect(page.get_by_text(DOOR)).to_be_visible()
            expect(page.get_by_role("button", name="Sign in")).to_be_visible()
            assert page.locator('[data-testid="stSidebar"]').count() == 0
            assert "Recent runs" not in page.locator("body").inner_text()
        idle(page)
        page.screenshot(path=str(SHOTS / f"class-sign-in-{width}.png"))
        context.close()

    # (b) ada launches a run
    ada_context, ada = person(browser)
    sign_in(ada, base, ADA)
    expect(ada.locator('[data-testid="stSidebar"]').get_by_text(f"{ADA} · learner")).to_be_visible()
    ada_run = launch(ada, base, runs_dir, ADA, "ada's lenet")

    # (c) bob launches his; ada's is not his to see, nor to change
    bob_context, bob = person(browser)
    sign_in(bob, base, BOB)
    bob_run = launch(bob, base, runs_dir, BOB, "bob's lenet")
    bob.goto(f"{base}/compare")
    table = bob.locator('[data-testid="stDataFrame"]').first
    expect(table).to_contain_text("bob's lenet")
    idle(bob)
    assert "ada's lenet" not in bob.locator("body").inner_text() and "ada's lenet" not in table.inner_text()
    bob.goto(f"{base}/inspect?run={ada_run.name}")
    expect(bob.get_by_text(f"There is no run '{ada_run.name}' in the runs folder")).to_be_visible()
    assert "ada's lenet" not in bob.locator("body").inner_text()
    bob_person = people.Policy.from_dict({"learners": ["@school.test"], "teachers": [TEACHER]}).admits(BOB)
    with pytest.raises(people.NotYours, match=re.escape(ADA)):
        store.rename_run(ada_run, "bob was here", by=bob_person)
    assert store.read_run(ada_run).name == "ada's lenet"

    # (d) eve is not on the list
    eve_context, eve = person(browser)
    sign_in(eve, base, EVE)
    expect(eve.get_by_text(f"{EVE} is not on this class's list")).to_be_visible()
    expect(eve.get_by_role("button", name="Sign out")).to_be_visible()
    assert eve.locator('[data-testid="stSidebar"]').count() == 0
    eve.screenshot(path=str(SHOTS / "class-not-listed.png"))

    # (e) the teacher's leaderboard, once both runs completed
    records = {email: completed(path) for email, path in ((ADA, ada_run), (BOB, bob_run))}
    teacher_context, teacher = person(browser)
    sign_in(teacher, base, TEACHER)
    teacher.goto(f"{base}/class")
    teacher.get_by_role("heading", name="Leaderboard").wait_for()
    board = teacher.locator('[data-testid="stDataFrame"]').filter(has_text=ADA).filter(has_text=BOB).first
    expect(board).to_be_visible()
    expect(teacher.get_by_role("heading", name="Everyone's runs")).to_be_visible()
    idle(teacher)
    text = board.text_content()          # the grid's cells, as its table for screen readers holds them
    for email, record in records.items():       # a row: owner, run, rank, best test accuracy
        acc = record.summary["test_acc"]
        assert acc is not None and re.search(re.escape(email + record.name) + r"\d+" + re.escape(repr(acc)), text), text
    teacher.screenshot(path=str(SHOTS / "class-teacher.png"), full_page=True)
    for context in (ada_context, bob_context, eve_context, teacher_context):
        context.close()
