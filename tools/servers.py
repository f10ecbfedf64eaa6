"""Scratch PostgreSQL and Redis servers for the tests and `make cluster-demo`.

Each runs from a folder of its own on a free local port, and stops with it. PostgreSQL
refuses to run as root: as root the cluster belongs to, and runs as, the unprivileged
user `nobody`. Nothing needs to run before: the servers are Debian's packages
(`postgresql`, `redis-server`), found under /usr/lib/postgresql/<version>/bin and on PATH.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

UNPRIVILEGED = "nobody"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's program folder."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
    return found[-1].parent


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", UNPRIVILEGED, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str]) -> None:
    """A server program as the server's user; its own words when it fails."""
    done = subprocess.run(_as_server_user(command), capture_output=True, text=True, cwd="/")
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")


def _wait_for_port(port: int, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start: {log.read_text(errors='replace')[-2000:] if log.exists() else ''}")


@contextmanager
def postgres(folder: Path, durable: bool = True) -> Iterator[str]:
    """A PostgreSQL cluster in `folder` (made once, reused), running while inside; the
    URL of its `postgres` database (trust authentication, 127.0.0.1 only).
    durable=False turns fsync off (tests: the server's durability is not what they test)."""
    folder.mkdir(parents=True, exist_ok=True)
    data, socket_dir, log = folder / "data", folder / "socket", folder / "server.log"
    socket_dir.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, UNPRIVILEGED)
        shutil.chown(socket_dir, UNPRIVILEGED)
    bin_dir = postgres_bin()
    if not (data / "PG_VERSION").exists():
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
              "--locale=C.UTF-8"])
    port = free_port()
    options = f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"])
    try:
        _wait_for_port(port, 30, "PostgreSQL", log)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True, cwd="/")


def create_database(admin_url: str, name: str) -> str:
    """A new empty database on the server of `admin_url`; its URL."""
    import psycopg
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    return admin_url.rsplit("/", 1)[0] + "/" + name


@contextmanager
def redis(folder: Path) -> Iterator[str]:
    """A Redis server in `folder` (no persistence: a broker for one session); its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), folder / "redis.log"
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                               "--save", "", "--appendonly", "no", "--logfile", str(log)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, 30, "Redis", log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=30)
