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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN_ENV = "CNN_TOKEN"
HOSTS_ENV = "CNN_ALLOWED_HOSTS"
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


def command(port: int, address: str, hosts: list[str]) -> list[str]:
    """`streamlit run ui/gate.py` (dashboard.py behind the token gate) with the port, the address and the host
    list; the rest comes from .streamlit/config.toml."""
    return [sys.executable, "-m", "streamlit", "run", str(ROOT / "ui" / "gate.py"), "--server.port", str(port),
            "--server.address", address, *[f"--server.allowedHosts={h}" for h in hosts]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ui.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args(argv)
    hosts = allowed_hosts(args.address, os.environ.get(HOSTS_ENV))
    secret = token()
    if secret is None and not is_loopback(args.address):
        secret = os.environ[TOKEN_ENV] = secrets.token_urlsafe(24)
    if secret:
        print("The dashboard asks for its token. Open one of these URLs (the token is the secret: share it only "
              "with the people meant to use this dashboard):", *[f"    {u}" for u in urls(args.address, args.port,
              secret)], f"It answers to the host names: {', '.join(hosts)} (more: {HOSTS_ENV}=name1,name2).",
              sep="\n", flush=True)
    os.execv(sys.executable, command(args.port, args.address, hosts))


if __name__ == "__main__":
    main()
