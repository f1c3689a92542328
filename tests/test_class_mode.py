"""Class mode in the library (core/people.py, runs/owners.py, the queue's turns in train/jobs.py): a learner
changes only their own runs, sweeps and datasets whatever page calls, sees what the teacher allows, stays
within their limits (a refusal names the limit and the number), and the queue takes turns between people.
Real run folders and, for the queue, real training processes."""
from __future__ import annotations

import io
import json
import os
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from cnn_core.config import TrainConfig
from cnn_core.core import people
from cnn_core.data import pictures
from cnn_core.runs import archive, owners, store
from cnn_core.sweeps import ledger
from cnn_core.train import jobs

CLASS = {"learners": ["@school.test", "cy@elsewhere.test"], "teachers": ["grace@school.test"], "max_runs": 2,
         "max_epochs": 5, "max_disk_mb": 5}
POLICY = people.Policy.from_dict(CLASS)
ADA, BOB = POLICY.admits("Ada@School.test"), POLICY.admits("bob@school.test")
GRACE = POLICY.admits("grace@school.test")
TINY = dict(dataset="mnist", val_size=100, batch_size=32, epochs=1, arch="lenet", log_every=5)


def test_the_class_settings_are_checked_and_each_mistake_named():
    with pytest.raises(ValueError) as caught:
        people.Policy.from_dict({"learners": ["ada@school.test", "not an address"], "max_run": 3,
                                 "max_epochs": 0, "share_runs": "yes"})
    text = str(caught.value)
    for part in ("unknown setting 'max_run'", "'not an address' is neither an e-mail address nor an @domain",
                 "teachers must name at least one address", "max_epochs must be a whole number of at least 1",
                 "share_runs must be true or false"):
        assert part in text


def test_the_allow_list_admits_addresses_domains_and_teachers_only():
    assert ADA == people.Person("ada@school.test") and not ADA.teacher     # addresses compared in lowercase
    assert GRACE.teacher and GRACE.limits is None and ADA.limits.max_runs == 2
    assert POLICY.admits("cy@elsewhere.test") is not None
    assert POLICY.admits("dan@elsewhere.test") is None                     # the domain is not listed
    assert POLICY.admits("ada@school.test.evil.example") is None           # a domain is matched whole
    assert POLICY.admits("ada@school.test", verified=False) is None        # the provider says: not verified
    assert POLICY.admits(None) is None and POLICY.admits("no-at-sign") is None


def test_a_learner_changes_only_their_own_runs(runs_dir):
    path = store.create_run(TrainConfig(**TINY), name="ada's", by=ADA)
    assert store.read_run(path).owner == "ada@school.test"
    refusals = {
        "rename": lambda: store.rename_run(path, "mine now", by=BOB),
        "note": lambda: store.set_note(path, "x", by=BOB),
        "steer": lambda: store.steer(path, by=BOB, lr=0.1),
        "launch": lambda: jobs.launch(path, by=BOB),
        "stop": lambda: jobs.cancel(path, by=BOB),
        "more epochs": lambda: jobs.more_epochs(path, 1, by=BOB),
        "delete (jobs)": lambda: jobs.delete_run(path, by=BOB),
        "delete (store)": lambda: store.delete_run(path, by=BOB),
    }
    for act in refusals.values():
        with pytest.raises(people.NotYours, match="belongs to ada@school.test; signed in as bob@school.test"):
            act()
    assert store.read_run(path).name == "ada's" and not (path / store.CANCEL).exists()
    store.rename_run(path, "renamed by her teacher", by=GRACE)
    store.rename_run(path, "renamed by the CLI")                            # by=None: the administrator
    store.rename_run(path, "hers again", by=ADA)
    jobs.delete_run(path, by=ADA)
    assert not path.exists()


def test_what_a_learner_sees_is_theirs_the_teachers_and_what_is_shared(runs_dir):
    ada = store.create_run(TrainConfig(**TINY), by=ADA)
    bob = store.create_run(TrainConfig(**TINY), by=BOB)
    demo = store.create_run(TrainConfig(**TINY))                          # made outside class mode
    records = store.list_runs()
    seen = lambda person: {r.path for r in owners.visible(records, person)}
    assert seen(BOB) == {bob, demo}
    assert seen(GRACE) == seen(None) == {ada, bob, demo}
    sharing = people.Policy.from_dict({**CLASS, "share_runs": True}).admits("bob@school.test")
    assert seen(sharing) == {ada, bob, demo}
    with pytest.raises(people.NotYours):                                   # shared to look at, not to change
        store.rename_run(ada, "x", by=sharing)
    assert [r.path for r in owners.mine(records, BOB)] == [bob]


def test_limits_refuse_naming_the_limit_and_the_number(runs_dir):
    with pytest.raises(people.OverLimit, match=r"asks for 6 epochs; the class allows at most 5 per run \(max_epochs\)"):
        store.create_run(TrainConfig(**{**TINY, "epochs": 6}), by=ADA)
    n_params = store.read_run(store.create_run(TrainConfig(**TINY), by=GRACE)).n_params
    small = people.Policy.from_dict({**CLASS, "max_params": n_params - 1}).admits("ada@school.test")
    with pytest.raises(people.OverLimit, match=f"This model has {n_params:,} weights; the class allows at most "
                                               f"{n_params - 1:,} per model"):
        store.create_run(TrainConfig(**TINY), by=small)
    first = store.create_run(TrainConfig(**TINY), by=ADA)                  # queued: made, waiting to train
    store.create_run(TrainConfig(**TINY), by=ADA)
    with pytest.raises(people.OverLimit, match=r"You have 2 runs training or waiting, the most the class allows "
                                               r"each learner \(max_runs = 2\)"):
        store.create_run(TrainConfig(**TINY), by=ADA)
    store.create_run(TrainConfig(**TINY), by=BOB)                          # another learner's share is theirs
    for _ in range(3):
        store.create_run(TrainConfig(**{**TINY, "epochs": 50}), by=GRACE)  # a teacher has none
    store.update_run(first, status="completed", summary={"epochs_done": 1})
    (first / store.CHECKPOINT).write_bytes(b"")            # more epochs go on from one (only its presence counts here)
    (first / "big.bin").write_bytes(b"\0" * 6_000_000)
    with pytest.raises(people.OverLimit, match=r"Your runs and datasets take 6 MB; the class allows 5 MB each "
                                               r"\(max_disk_mb\)"):
        store.create_run(TrainConfig(**TINY), by=ADA)
    with pytest.raises(people.OverLimit, match=r"asks for 6 epochs.*\(max_epochs\)"):
        jobs.more_epochs(first, 5, by=ADA)      # 1 done + 5
    assert len(store.list_runs()) == 7                       # 1 + 2 + 1 + 3: nothing refused was written


def test_an_imported_run_is_the_importers_whatever_its_file_says(runs_dir, tmp_path):
    path = store.create_run(TrainConfig(**TINY), name="ada's", by=ADA)
    store.update_run(path, status="completed")
    data = archive.zip_run(path)
    forged = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(forged, "w") as zout:
        for info in zin.infolist():
            body = zin.read(info)
            if info.filename.endswith(store.RUN_JSON):
                body = json.dumps({**json.loads(body), "owner": "grace@school.test"}).encode()
            zout.writestr(info, body)
    mine = archive.import_run(forged.getvalue(), by=BOB)
    assert store.read_run(mine).owner == "bob@school.test"
    again = archive.import_run(data, by=BOB, on_duplicate="copy")          # ada's own copy is not bob's "same run"
    assert store.read_run(again).owner == "bob@school.test" and again != path
    assert store.read_run(archive.import_run(data, on_duplicate="copy")).owner is None   # the CLI's


def _pictures(folder: Path) -> Path:
    for label, shade in (("dark", 30), ("light", 220)):
        (folder / label).mkdir(parents=True)
        for i in range(8):
            Image.new("L", (12, 12), shade + i).save(folder / label / f"{i}.png")
    return folder


def test_an_added_dataset_is_its_adders(runs_dir, tmp_path, small_data_dir, monkeypatch):
    data = tmp_path / "data"
    (data / "cache").mkdir(parents=True)
    source = _pictures(tmp_path / "pics")
    info = owners.add_dataset("shades", source, data_dir=data, by=ADA)
    assert info.owner == "ada@school.test"
    with pytest.raises(people.NotYours, match="dataset 'shades' belongs to ada@school.test"):
        pictures.delete("shades", data, by=BOB)
    with pytest.raises(people.NotYours):
        pictures.rename("shades", "mine", data, by=BOB)
    assert [i.id for i in owners.visible(pictures.added(data), BOB)] == []
    pictures.rename("shades", "greys", data, by=ADA)
    assert pictures.added(data)[0].owner == "ada@school.test"              # a rename keeps the owner
    assert owners.disk_used("ada@school.test", runs_dir, data) > 0
    pictures.delete("greys", data, by=GRACE)
    assert pictures.added(data) == []


def test_a_sweep_is_its_makers(runs_dir):
    sweep = ledger.create(TrainConfig(**TINY), ledger.parse_grid(["lr=0.01,0.1"]), trials=2, by=ADA)
    assert ledger.read(sweep.id).owner == "ada@school.test"
    for act in (lambda: ledger.cancel(sweep.id, by=BOB), lambda: ledger.delete(sweep.id, by=BOB),
                lambda: ledger.launch(sweep, by=BOB)):
        with pytest.raises(people.NotYours, match="belongs to ada@school.test"):
            act()
    with pytest.raises(people.OverLimit, match="asks for 9 epochs"):
        ledger.create(TrainConfig(**TINY), ledger.parse_grid(["epochs=1,9"]), trials=2, by=ADA)


# ---- the queue takes turns ---------------------------------------------------------------------------
def _ticket(n: int, owner: str, training=False) -> jobs.Ticket:
    name = f"{1000 + n:017.6f}.{os.getpid()}.{people.tag(owner)}.run-{owner}-{n}"
    return jobs.Ticket(Path(("run." if training else "") + name), os.getpid(), people.tag(owner), f"{owner}-{n}",
                       training)


def test_turns_go_round_between_people():
    waiting = [_ticket(i, "ada") for i in range(1, 6)] + [_ticket(9, "bob")]
    order = lambda tickets, served=None: [t.run_id for t, _ in jobs.turns(tickets, served)]
    # nobody trains: ada's first (the oldest), then bob's, though five of ada's came before it
    assert order(waiting) == ["ada-1", "bob-9", "ada-2", "ada-3", "ada-4", "ada-5"]
    # one of ada's trains: bob's comes first
    assert order([_ticket(0, "ada", training=True)] + waiting)[0] == "bob-9"
    # ada's just finished (she was served last): bob's goes before her next, turn 0 each
    served = {people.tag("ada"): 200.0}
    assert order(waiting, served)[:2] == ["bob-9", "ada-1"]
    assert [turn for _, turn in jobs.turns(waiting, served)] == [0, 0, 1, 2, 3, 4]
    one_owner = [_ticket(i, "admin") for i in (3, 1, 2)]
    assert order(sorted(one_owner, key=lambda t: t.file.name)) == ["admin-1", "admin-2", "admin-3"]


def test_one_learners_five_runs_do_not_hold_back_anothers_one(runs_dir, monkeypatch):
    """Real processes, one slot: ada launches five runs, then bob one. Bob's trains second, not sixth."""
    monkeypatch.setenv("CNN_MAX_JOBS", "1")
    roomy = people.Policy.from_dict({**CLASS, "max_runs": 5})
    ada, bob = roomy.admits("ada@school.test"), roomy.admits("bob@school.test")
    hers = [store.create_run(TrainConfig(**TINY), name=f"ada {i}", by=ada) for i in range(5)]
    for path in hers:
        jobs.launch(path, by=ada)
    deadline = time.monotonic() + 60
    while not any(store.read_run(p).status == "running" for p in hers):   # her first holds the slot
        assert time.monotonic() < deadline, "no run of ada's started"
        time.sleep(0.2)
    his = store.create_run(TrainConfig(**TINY), name="bob", by=bob)
    jobs.launch(his, by=bob)
    line = jobs.queue(runs_dir)
    assert [e["run"] for e in line if not e["training"]][0] == his.name, line
    for path in [*hers, his]:
        assert jobs.wait(path, timeout=240) == "completed"
    started = sorted([*hers, his], key=lambda p: store.read_run(p).started)
    assert started.index(his) == 1, [store.read_run(p).name for p in started]
    assert not [n for n in os.listdir(runs_dir / jobs.QUEUE) if n.endswith(tuple(p.name for p in [*hers, his]))]


def test_the_command_line_is_the_administrator(runs_dir):
    """The machine's own user changes any learner's run from the shell and sees whose each is."""
    import subprocess
    import sys

    path = store.create_run(TrainConfig(**TINY), name="ada's", by=ADA)
    run = lambda *args: subprocess.run([sys.executable, "-m", "cnn_core", "runs", *args], capture_output=True,  # noqa: E731
                                       text=True, timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert "(ada@school.test)" in run("list").stdout
    assert "owner     ada@school.test" in run("show", path.name).stdout
    out = run("rename", path.name, "tidied by the teacher")
    assert out.returncode == 0, out.stderr
    assert store.read_run(path).name == "tidied by the teacher" and store.read_run(path).owner == "ada@school.test"


def test_a_lesson_starts_whole_or_not_at_all(runs_dir, monkeypatch):
    """A lesson's experiments are checked together: with one run busy and room for two more, a lesson of three
    is refused before any of its runs is made."""
    from cnn_core.train import lessons

    store.create_run(TrainConfig(**TINY), by=ADA)                       # waiting (made, not launched)
    roomy = people.Policy.from_dict({**CLASS, "max_runs": 3}).admits("ada@school.test")
    with pytest.raises(people.OverLimit, match=r"You have 1 run training or waiting; these 3 more would pass the "
                                               r"most the class allows each learner \(max_runs = 3\)"):
        lessons.launch(lessons.get("learning-rate"), by=roomy)
    assert len(store.list_runs()) == 1


def test_an_export_writes_into_its_owners_run_only(runs_dir):
    """Exporting writes into the run's folder (exports/): another learner's export is refused before the model
    is even loaded."""
    from cnn_core.export import formats

    path = store.create_run(TrainConfig(**TINY), by=ADA)
    with pytest.raises(people.NotYours, match="belongs to ada@school.test"):
        formats.export_model(path, "onnx", by=BOB)
    assert not (path / store.EXPORT_DIR).exists()
