"""Class mode on the pages (ui/access.py, ui/signin.py; README's "For a class"), without a browser: every call in
ui/ that changes something names who acts (`by=`), the doors a session meets before it may come in, and what a
signed-in learner sees and may change. AppTest stands in for the server: `at.secrets` are the secrets file's
tables, `at.user` is what st.login left in st.user. The browser side is tests/browser/test_class_browser.py."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pagekit import shown
from streamlit.testing.v1 import AppTest

from cnn_core.config import TrainConfig
from cnn_core.core import people
from cnn_core.runs import store
from ui.compare import state as compare_state

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 90
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "a-test-cookie-secret-0123456789",
        "client_id": "cnn-dashboard", "client_secret": "any",
        "server_metadata_url": "http://localhost:9/.well-known/openid-configuration"}
CLASS = {"learners": ["@school.test"], "teachers": ["teacher@school.test"]}
ADA, BOB, TEACHER = "ada@school.test", "bob@school.test", "teacher@school.test"

# ---- every changing call names who acts -----------------------------------------------------------------
# The library's calls that change something (each takes by=: None outside class mode, the signed-in Person in
# it), by the module name the pages import them under.
CHANGING = {"create_run", "rename_run", "set_note", "delete_run", "steer", "launch", "more_epochs", "cancel",
            "import_run", "rename", "delete", "add", "add_dataset", "create", "export_model"}
MODULES = {"store", "jobs", "archive", "pictures", "owners", "ledger", "lessons", "formats"}


def unnamed_actors(source: str, where: str = "<source>") -> list[str]:
    """Where `source` calls a changing function of those modules without by= (module.function(...), or the
    function imported by name), or calls pictures.add instead of owners.add_dataset (which checks the learner's
    disk share first)."""
    found = []
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").rsplit(".", 1)[-1] in MODULES:
            imported |= {a.asname or a.name for a in node.names if a.name in CHANGING}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in MODULES \
                and func.attr in CHANGING:
            name = f"{func.value.id}.{func.attr}"
        elif isinstance(func, ast.Name) and func.id in imported:
            name = func.id
        else:
            continue
        if name == "pictures.add":
            found.append(f"{where}:{node.lineno}: pictures.add (use owners.add_dataset, which checks the disk share)")
        elif not any(k.arg == "by" for k in node.keywords):
            found.append(f"{where}:{node.lineno}: {name}(...) without by=")
    return found


def test_every_changing_call_in_ui_names_who_acts():
    """Each call in ui/ to a library function that changes a run, sweep or dataset passes by= (the library then
    checks the owner), and datasets are added through owners.add_dataset, never pictures.add."""
    files = sorted((ROOT / "ui").rglob("*.py"))
    assert ROOT / "ui" / "compare" / "widgets.py" in files
    found = [hit for f in files for hit in unnamed_actors(f.read_text(), str(f.relative_to(ROOT)))]
    assert not found, "\n".join(found)


def test_the_check_finds_what_it_is_for():
    """The check above is not vacuous: it names a call without by=, one imported by name, and pictures.add."""
    source = ("from cnn_core.runs.store import rename_run\n"
              "store.rename_run(p, 'x')\njobs.cancel(p, by=me)\nrename_run(p, 'y')\n"
              "pictures.add('d', src, by=me)\nledger.delete(s.id)\nviews.delete(x)\n")
    found = unnamed_actors(source)
    assert [f.split(":")[1] for f in found] == ["2", "4", "5", "6"], found


# ---- the doors ---------------------------------------------------------------------------------------------
def frame(user: dict | None = None, klass=CLASS, auth=AUTH, page: str | None = None) -> AppTest:
    """dashboard.py with these secrets (klass None: no [class], the laptop path) as `user` would see it."""
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=TIMEOUT)
    if auth is not None:
        at.secrets["auth"] = auth
    if klass is not None:
        at.secrets["class"] = klass
    at.user = user if user is not None else {"is_logged_in": False}
    at.run()
    if page:
        at.switch_page(str(ROOT / "ui" / page / "page.py")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def signed_in(email: str) -> dict:
    return {"is_logged_in": True, "email": email, "email_verified": True}


def nothing_of_the_dashboard(at: AppTest) -> None:
    assert [t.value for t in at.title] == ["CNN Trainer"]
    assert not at.sidebar.markdown and not at.subheader and not at.text_input and not at.selectbox


def test_not_signed_in_every_address_shows_only_the_sign_in():
    """In class mode, a session nobody signed into sees the title, one line and a primary Sign in, whatever page
    it asked for, and nothing of the dashboard."""
    at = frame()
    nothing_of_the_dashboard(at)
    assert [m.value for m in at.markdown] == ["This dashboard belongs to a class: sign in with your school account."]
    assert [(b.label, b.proto.type) for b in at.button] == [("Sign in", "primary")]


def test_an_address_the_class_does_not_list_is_refused():
    """Signed in as eve@elsewhere.test: the page says the address is not on the class's list, with Sign out;
    an address the provider says is not verified is refused the same way."""
    for user in (signed_in("eve@elsewhere.test"), {**signed_in("mallory@school.test"), "email_verified": False}):
        at = frame(user)
        nothing_of_the_dashboard(at)
        assert "is not on this class's list" in shown(at.error[0].value)
        assert shown(at.error[0].value).startswith(user["email"])
        assert [b.label for b in at.button] == ["Sign out"]


@pytest.mark.parametrize("klass, auth, words", [
    ({"learners": ["@school.test"], "teachers": [], "max_runs": 0}, AUTH, "teachers must name at least one address"),
    ({"teachers": ["teacher@school.test"], "max_epoch": 3}, AUTH, "unknown setting 'max_epoch'"),
    (CLASS, None, "through the [auth] table"),
])
def test_wrong_class_settings_let_nobody_in(klass, auth, words):
    """A [class] table with a mistake (or class mode without [auth]) names the mistake and lets nobody in, not
    even a teacher signed in."""
    at = frame(signed_in(TEACHER), klass=klass, auth=auth)
    nothing_of_the_dashboard(at)
    assert "lets nobody in" in shown(at.error[0].value) and words in shown(at.error[0].value), at.error[0].value
    assert not at.button


def test_outside_class_mode_nobody_signs_in():
    """No [class] (an [auth] alone, too): no door, no sign-in line in the sidebar; the laptop dashboard."""
    at = frame({}, klass=None)
    assert [t.value for t in at.title] == ["CNN Trainer"] and at.subheader
    sidebar = "\n".join(str(m.value) for m in at.sidebar.markdown)
    assert "Device" in sidebar and "Signed in" not in sidebar and not at.sidebar.button


def test_a_learner_gets_the_pages_a_teacher_the_class_page_too():
    """Admitted, a learner sees who they are and Sign out in the sidebar and every page but Class, which is not
    in their navigation; a teacher opens Class (its leaderboard)."""
    at = frame(signed_in("Ada@School.test"))
    assert [t.value for t in at.title] == ["CNN Trainer"]
    assert shown(at.sidebar.markdown[0].value) == f"**Signed in**  \n{ADA} · learner"
    assert [b.label for b in at.sidebar.button] == ["Sign out"]
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(str(ROOT / "ui" / "classroom" / "page.py"))
    at = frame(signed_in(TEACHER), page="classroom")
    assert [t.value for t in at.title] == ["Class"] and "Leaderboard" in [s.value for s in at.subheader]
    assert shown(at.sidebar.markdown[0].value).endswith(f"{TEACHER} · teacher")


# ---- what a learner sees and may change -------------------------------------------------------------------
def person(email: str, **klass) -> people.Person:
    return people.Policy.from_dict({**CLASS, **klass}).admits(email)


@pytest.fixture
def two_runs(runs_dir) -> dict[str, Path]:
    """A finished-looking run of ada's and one of bob's (made by the library as the pages make them)."""
    made = {}
    for email, name in ((ADA, "ada's run"), (BOB, "bob's run")):
        path = store.create_run(TrainConfig(dataset="mnist", arch="lenet", epochs=1), name, runs_dir,
                                by=person(email))
        store.update_run(path, status="cancelled")
        made[email] = path
    return made


def page(name: str, email: str, klass=CLASS, **query) -> AppTest:
    """One page file alone (as test_pages does) in class mode, signed in as `email`."""
    package = {"inspect": "inspector"}.get(name, name)
    at = AppTest.from_file(str(ROOT / "ui" / package / "page.py"), default_timeout=TIMEOUT)
    at.secrets["auth"], at.secrets["class"] = AUTH, klass
    at.user = signed_in(email)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def every_text(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title", "subheader"):
        parts += [shown(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def test_a_learner_sees_only_their_own_runs(two_runs):
    """share_runs false: bob's Compare and Home list his run, not ada's; Inspect with ?run=<ada's run> says there
    is no such run, as for an id that does not exist; ada's Compare lists hers."""
    ada_id = two_runs[ADA].name
    compare = page("compare", BOB)
    listed = compare.dataframe[0].value
    assert list(listed["name"]) == ["bob's run"]
    assert "bob's run" in page("home", BOB).dataframe[0].value["name"].tolist()
    unknown = every_text(page("inspect", BOB, run="0" * len(ada_id)))
    hidden = every_text(page("inspect", BOB, run=ada_id))
    assert f"There is no run '{ada_id}' in the runs folder" in hidden
    assert hidden.replace(ada_id, "0" * len(ada_id)) == unknown
    assert list(page("compare", ADA).dataframe[0].value["name"]) == ["ada's run"]


def test_a_shared_run_opens_read_only(two_runs):
    """share_runs true: bob opens ada's run on Compare and on Train's live panel, where it is named as hers and
    offers no Rename, note, Delete, Resume or Train more."""
    ada_id = two_runs[ADA].name
    at = page("compare", BOB, klass={**CLASS, "share_runs": True})
    assert set(at.dataframe[0].value["name"]) == {"ada's run", "bob's run"}
    at.selectbox(key=compare_state.PICKED).set_value(ada_id).run()
    assert f"This run is {ADA}'s: you may open it, not change it." in every_text(at)
    assert not [b for b in at.button if b.label in ("Rename", "Save note", "Delete run…")]
    live = page("train", BOB, klass={**CLASS, "share_runs": True}, run=ada_id)
    assert f"This run is {ADA}'s: you may watch it, not change it." in every_text(live)
    assert not [b for b in live.button if b.label in ("Resume", "Start", "Train more", "Stop")]
    mine = page("train", ADA, klass={**CLASS, "share_runs": True}, run=ada_id)
    assert "you may watch it" not in every_text(mine)


def test_the_library_refuses_bob_renaming_adas_run(two_runs):
    """Whatever a page shows, store.rename_run with bob's by= refuses ada's run, naming her; the run keeps its name."""
    with pytest.raises(people.NotYours, match=ADA):
        store.rename_run(two_runs[ADA], "bob was here", by=person(BOB))
    assert store.read_run(two_runs[ADA]).name == "ada's run"


# ---- make run in class mode ---------------------------------------------------------------------------------
def test_make_run_in_class_mode_asks_no_token(tmp_path, monkeypatch, capsys):
    """With [class] in $CNN_SECRETS, `make run ADDRESS=0.0.0.0` (ui/serve.py) asks for no token (a CNN_TOKEN set
    is dropped), says so in one line, answers to the host of [auth] redirect_uri and hands Streamlit the file;
    without [class] beyond loopback it still makes a token."""
    from ui import serve

    secrets = tmp_path / "class-secrets.toml"
    secrets.write_text('[auth]\nredirect_uri = "http://Class-Server.school.test:8501/oauth2callback"\n'
                       '[class]\nteachers = ["teacher@school.test"]\n')
    ran = []       # the command line `make run` itself builds (serve.main), caught at its execv: no server starts
    monkeypatch.setattr(serve.os, "execv", lambda exe, argv: ran.append(argv))
    monkeypatch.setenv("CNN_SECRETS", str(secrets))
    monkeypatch.setenv("CNN_TOKEN", "set-by-habit")
    serve.main(["--port", "8599", "--address", "0.0.0.0"])
    out = capsys.readouterr().out
    assert out.startswith("Class mode ([class] in ") and out.count("\n") == 1 and "token=" not in out
    assert "CNN_TOKEN" not in serve.os.environ
    argv = ran[0]
    assert "--server.allowedHosts=class-server.school.test" in argv
    assert argv[argv.index("--secrets.files") + 1] == str(secrets)

    secrets.write_text('[auth]\nredirect_uri = "http://localhost:8501/oauth2callback"\n')
    serve.main(["--port", "8599", "--address", "0.0.0.0"])
    assert "asks for its token" in capsys.readouterr().out and serve.os.environ.get("CNN_TOKEN")
    monkeypatch.delenv("CNN_SECRETS")
    serve.main(["--port", "8599", "--address", "127.0.0.1"])
    assert "--secrets.files" not in ran[-1]
