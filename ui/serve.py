"""How `make run` serves the dashboard: Streamlit on dashboard.py (through ui/gate.py), answering only to the
names it is served under, and asking for a token when other machines can reach it (docs/SECURITY.md).

    python -m ui.serve --port 8501 --address 127.0.0.1      # what `make run` runs

- Host names: Streamlit opens a session's WebSocket only when its Host header is in server.allowedHosts. A
  web page whose DNS name is rebound to 127.0.0.1 sends its own name and is refused. The list is the
  loopback names, the address served on (for 0.0.0.0 or ::, this machine's names and addresses) and
  $CNN_ALLOWED_HOSTS (more names, comma-separated: a DNS alias, a reverse proxy's name).
- The token: served beyond loopback (or whenever $CNN_TOKEN is set), no request but the health check
  reaches Streamlit without it (ui/gate.py, an ASGI middleware in front of the whole server, as Jupyter
  does). It is $CNN_TOKEN, else a new random one; the URL to open is printed at start.
- Class mode: the secrets file ($CNN_SECRETS, else .streamlit/secrets.toml) holds a `[class]` table. Everyone
  signs in (st.login, its `[auth]` table; ui/access.py), which replaces the token: none is asked for, even
  beyond loopback ($CNN_TOKEN is dropped: the provider's redirect back to /oauth2callback comes from another
  site and would not carry a SameSite=Strict cookie). The host of `[auth] redirect_uri` is added to the names
  the server answers to. $CNN_SECRETS (a file a teacher keeps outside the checkout) goes to Streamlit as
  --secrets.files.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import ipaddress
import os
import secrets
import socket
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
TOKEN_ENV = "CNN_TOKEN"
HOSTS_ENV = "CNN_ALLOWED_HOSTS"
SECRETS_ENV = "CNN_SECRETS"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
ANY = ("0.0.0.0", "::", "")           # listen on every interface


def token() -> str | None:
    """The secret a browser must bring, or None when none is asked for ($CNN_TOKEN; main sets it)."""
    return os.environ.get(TOKEN_ENV) or None


def cookie_name(port) -> str:
    return f"cnn_access_{port}"


def cookie_value(secret: str) -> str:
    """What a browser let in keeps: a keyed hash of the token (the token itself never sits in a cookie)."""
    return hmac.new(secret.encode(), b"cnn-dashboard access cookie", hashlib.sha256).hexdigest()


def matches(given, expected: str) -> bool:
    """Whether `given` is `expected`, compared in constant time (a wrong guess says nothing of the token)."""
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def is_loopback(address: str | None) -> bool:
    """True for an address or name only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    name = (address or "").strip().strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def machine_names() -> list[str]:
    """This machine's host names and the addresses they and its network interfaces have."""
    names = {socket.gethostname(), socket.getfqdn()}
    try:
        names |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        pass
    try:                                   # the address a packet out of this machine leaves from (none is sent)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            names.add(s.getsockname()[0])
    except OSError:
        pass
    return sorted(n for n in names if n and not is_loopback(n))


def allowed_hosts(address: str, extra: str | None = None) -> list[str]:
    """The Host names a server on `address` answers to: loopback, the address itself (every name of this
    machine for 0.0.0.0 / ::), and `extra` (comma-separated, $CNN_ALLOWED_HOSTS)."""
    hosts = list(LOOPBACK_NAMES)
    served = machine_names() if address.strip() in ANY else [address.strip().strip("[]")]
    more = [h.strip() for h in (extra or "").split(",")]
    for host in served + more:
        if host and host.lower() not in hosts:
            hosts.append(host.lower())
    return hosts


def urls(address: str, port: int, token: str | None) -> list[str]:
    """The URLs to print: the address served on (each of this machine's names for 0.0.0.0), token included."""
    hosts = machine_names() if address.strip() in ANY else [address.strip()]
    query = f"/?token={token}" if token else ""
    return [f"http://{f'[{h}]' if ':' in h else h}:{port}{query}" for h in hosts or ["127.0.0.1"]]


def secrets_file() -> Path:
    """The secrets file Streamlit reads: $CNN_SECRETS, else the checkout's .streamlit/secrets.toml."""
    return Path(os.environ[SECRETS_ENV]) if os.environ.get(SECRETS_ENV) else ROOT / ".streamlit" / "secrets.toml"


def read_secrets(path: Path) -> dict:
    """The secrets file's tables ({} when there is none); SystemExit naming the file when it is not TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SystemExit(f"The secrets file {path} cannot be read: {exc}") from None


def class_mode(tables: dict) -> bool:
    """Class mode: the secrets hold a [class] table (ui/signin.py reads it the same way)."""
    return "class" in tables


def sign_in_hosts(tables: dict) -> list[str]:
    """The host of [auth] redirect_uri: the name the provider sends a browser back to, which must reach us."""
    auth = tables.get("auth")
    uri = auth.get("redirect_uri") if isinstance(auth, dict) else None
    host = urlsplit(uri).hostname if isinstance(uri, str) else None
    return [host] if host else []


def command(port: int, address: str, hosts: list[str], secrets_path: Path | None = None) -> list[str]:
    """`streamlit run ui/gate.py` (dashboard.py behind the token gate) with the port, the address, the host
    list and, when given, the secrets file; the rest comes from .streamlit/config.toml."""
    return [sys.executable, "-m", "streamlit", "run", str(ROOT / "ui" / "gate.py"), "--server.port", str(port),
            "--server.address", address, *[f"--server.allowedHosts={h}" for h in hosts],
            *(["--secrets.files", str(secrets_path)] if secrets_path else [])]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ui.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args(argv)
    hosts = allowed_hosts(args.address, os.environ.get(HOSTS_ENV))
    path = secrets_file()
    found = read_secrets(path)
    secret = token()
    if class_mode(found):
        hosts += [h.lower() for h in sign_in_hosts(found) if h.lower() not in hosts]
        ignored, secret = os.environ.pop(TOKEN_ENV, None), None
        print(f"Class mode ([class] in {path}): everyone signs in with their school account ([auth]), so no token "
              f"is asked for{f' ({TOKEN_ENV} is ignored)' if ignored else ''}.", flush=True)
    elif secret is None and not is_loopback(args.address):
        secret = os.environ[TOKEN_ENV] = secrets.token_urlsafe(24)
    if secret:
        print("The dashboard asks for its token. Open one of these URLs (the token is the secret: share it only "
              "with the people meant to use this dashboard):", *[f"    {u}" for u in urls(args.address, args.port,
              secret)], f"It answers to the host names: {', '.join(hosts)} (more: {HOSTS_ENV}=name1,name2).",
              sep="\n", flush=True)
    os.execv(sys.executable, command(args.port, args.address, hosts, path if os.environ.get(SECRETS_ENV) else None))


if __name__ == "__main__":
    main()
