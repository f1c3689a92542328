"""Who acts, in class mode (docs/SECURITY.md, README's "For a class").

Outside class mode nobody signs in and `by=None` everywhere: the machine's own user (the CLI, the laptop
dashboard) is the administrator and may do anything. In class mode the dashboard signs a person in (st.login,
the school's OpenID Connect provider), admits them by the class's allow-list (`Policy.admits`) and hands the
`Person` to every library call that changes something, as `by=`: the library checks it (`check_change`), so a
page cannot forget to. Records keep their owner's address (`owner`): runs, sweeps, added datasets. A record
without one was made by the administrator: everyone may look at it, only a teacher or the CLI change it.

The class's settings are the `[class]` table of the dashboard's `.streamlit/secrets.toml` (beside Streamlit's
`[auth]`), read by `Policy.from_dict`:

    [class]
    learners = ["ada@school.org", "@pupils.school.org"]   # addresses, or "@domain" for a whole domain
    teachers = ["grace@school.org"]
    share_runs = false          # learners may open (never change) each other's runs
    max_runs = 3                # runs training or waiting, per learner
    max_epochs = 30             # per run
    max_params = 2_000_000      # weights per model
    max_disk_mb = 2000          # a learner's runs and added datasets together
    ray = "10.0.0.5:6379"       # optional: launched runs become Ray tasks on this cluster
    runs_at_once = 4            # runs training at once (the cluster's share; default: this machine's slots)
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, fields

_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}$")
_DOMAIN = re.compile(r"^@[A-Za-z0-9.-]{1,253}$")


class NotYours(ValueError):
    """An action on someone else's run, sweep or dataset, refused; the message names whose it is (a ValueError:
    the pages show it as they show any refusal)."""


class OverLimit(ValueError):
    """A learner's share of the machine is used up; the message names the limit and the numbers."""


@dataclass(frozen=True)
class Limits:
    """Each learner's share of the machine (teachers and the CLI have none)."""
    max_runs: int = 3            # runs training or waiting at once
    max_epochs: int = 30         # epochs of one run
    max_params: int = 2_000_000  # weights of one model
    max_disk_mb: int = 2000      # runs and added datasets together, in MB


@dataclass(frozen=True)
class Policy:
    """What the class allows: who comes in, who teaches, whether learners see each other's runs, the limits,
    and where runs train (a Ray cluster's address, or this machine)."""
    learners: tuple[str, ...] = ()
    teachers: tuple[str, ...] = ()
    share_runs: bool = False
    limits: Limits = field(default_factory=Limits)
    ray: str | None = None
    runs_at_once: int | None = None

    @classmethod
    def from_dict(cls, data) -> Policy:
        """The `[class]` table checked: ValueError naming every bad key (an unknown key too: a typo must not
        silently lift a limit)."""
        if not hasattr(data, "items"):
            raise ValueError("[class] must be a table of settings")
        data = dict(data.items())
        known = {"learners", "teachers", "share_runs", "ray", "runs_at_once"} | {f.name for f in fields(Limits)}
        errors = [f"unknown setting {k!r} (known: {', '.join(sorted(known))})" for k in data if k not in known]
        lists = {}
        for key in ("learners", "teachers"):
            value = data.get(key, [])
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                errors.append(f"{key} must be a list of e-mail addresses or @domains")
                value = []
            bad = [v for v in value if not (_EMAIL.match(v.strip()) or _DOMAIN.match(v.strip()))]
            errors += [f"{key}: {v!r} is neither an e-mail address nor an @domain" for v in bad]
            lists[key] = tuple(v.strip().lower() for v in value if v not in bad)
        if not lists["teachers"]:
            errors.append("teachers must name at least one address (who sees the whole class)")
        numbers = {}
        for f in fields(Limits):
            value = data.get(f.name, f.default)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                errors.append(f"{f.name} must be a whole number of at least 1, got {value!r}")
                value = f.default
            numbers[f.name] = value
        share = data.get("share_runs", False)
        if not isinstance(share, bool):
            errors.append(f"share_runs must be true or false, got {share!r}")
        ray = data.get("ray")
        if ray is not None and (not isinstance(ray, str) or not ray.strip()):
            errors.append(f"ray must be a cluster's address (host:port, or \"auto\"), got {ray!r}")
        at_once = data.get("runs_at_once")
        if at_once is not None and (isinstance(at_once, bool) or not isinstance(at_once, int) or at_once < 1):
            errors.append(f"runs_at_once must be a whole number of at least 1, got {at_once!r}")
        if errors:
            raise ValueError("the class settings ([class] in the dashboard's secrets file) are wrong: " + "; ".join(errors))
        return cls(lists["learners"], lists["teachers"], share is True, Limits(**numbers),
                   ray.strip() if isinstance(ray, str) else None, at_once)

    def admits(self, email, verified=None) -> Person | None:
        """The Person for a signed-in address, or None when the class does not list it (or the provider says
        the address is not verified: anyone may type any address into an account)."""
        if not isinstance(email, str) or not _EMAIL.match(email.strip()) or verified is False:
            return None
        email = email.strip().lower()
        domain = "@" + email.rsplit("@", 1)[1]
        if email in self.teachers:
            return Person(email, teacher=True, policy=self)
        if email in self.learners or domain in self.learners:
            return Person(email, teacher=False, policy=self)
        return None


@dataclass(frozen=True)
class Person:
    """Someone signed in: their address (what records keep as `owner`), whether they teach, the class."""
    email: str
    teacher: bool = False
    policy: Policy | None = field(default=None, compare=False, repr=False)

    @property
    def limits(self) -> Limits | None:
        """The share this person may use; None for a teacher (no limit)."""
        return None if self.teacher or self.policy is None else self.policy.limits


def owner_of(by: Person | None) -> str | None:
    """What a record made by `by` keeps as its owner: the address, or None for the administrator."""
    return by.email if by is not None else None


def may_change(owner: str | None, by: Person | None) -> bool:
    """The administrator (by=None) and teachers change anything; a learner only what they own."""
    return by is None or by.teacher or (owner is not None and owner == by.email)


def may_see(owner: str | None, by: Person | None) -> bool:
    """Whether `by` may open a record owned by `owner`: their own, the administrator's (no owner), and the
    class's own when the teacher shares runs."""
    if by is None or by.teacher or owner is None or owner == by.email:
        return True
    return bool(by.policy and by.policy.share_runs)


def check_change(what: str, owner: str | None, by: Person | None) -> None:
    """Raise NotYours unless `by` may change `what` (a phrase: "run 3f2a…"), owned by `owner`."""
    if not may_change(owner, by):
        whose = owner or "the teacher (made outside class mode)"
        raise NotYours(f"{what} belongs to {whose}; signed in as {by.email}, you may look at it but not change it")


def tag(owner: str | None) -> str:
    """A short name for an owner that is safe in a file name (the queue's tickets): '-' for the administrator."""
    return hashlib.sha256(owner.encode()).hexdigest()[:12] if owner else "-"
