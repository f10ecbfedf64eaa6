"""Shared fixtures: real rendered pages, the shared Vietnamese corpus, a digitize home."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools import synth
from tools.evaluate import word_recall_counts
from tools import REPO_ROOT as PROJECT_ROOT

DIGITIZE = [sys.executable, "-m", "digitize.cli"]
# A centre's settings in the caller's shell must not send the tests to its servers: each test
# that wants PostgreSQL or Redis starts its own (catalogue_backend, tests/test_cluster.py).
for _variable in ("DIGITIZE_DATABASE_URL", "DIGITIZE_BROKER_URL"):
    os.environ.pop(_variable, None)


def corpus_paragraphs(name: str = "ho-tich.txt", start: int = 0, count: int = 12) -> list[str]:
    """Real legal prose from ../shared/corpus/vi; the project's own text where it is absent."""
    return synth.corpus_lines(name)[start:start + count] or list(synth.SAMPLE_PARAGRAPHS)


def word_recall(truth_words: list[str], text: str) -> float:
    found, total = word_recall_counts(truth_words, text)
    return found / max(1, total)


@pytest.fixture(scope="session")
def prose_page() -> dict:
    return synth.render_prose(corpus_paragraphs(), dpi=300)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def run_digitize(args: list[str], home: Path, timeout: float = 600, **env) -> subprocess.CompletedProcess:
    """The real `digitize` command in a subprocess, state under `home`."""
    environment = {**os.environ, "DIGITIZE_HOME": str(home), **env}
    return subprocess.run([*DIGITIZE, *args], capture_output=True, text=True, timeout=timeout,
                          env=environment, cwd=PROJECT_ROOT)


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


# --- the web page (issue 14): one catalogue of the processed samples, one real server ---
SAMPLES = PROJECT_ROOT / "samples"
WEB_USERS = {  # name: (role, password)
    "admin": ("admin", "admin-password-1"),
    "Nguyễn Văn An": ("officer", "officer-password-1"),
    "giám sát": ("supervisor", "supervisor-password-1"),
}


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def web_home(tmp_path_factory) -> Path:
    """A digitize home with the sample registry imported, samples/ processed by the real
    pipeline (once per test session) and one account per role."""
    home = tmp_path_factory.mktemp("web") / "home"
    home.mkdir()
    for args in (["registry", "import", str(SAMPLES / "registry.csv")], ["process", str(SAMPLES)]):
        done = run_digitize(args, home, OMP_THREAD_LIMIT="1")
        assert done.returncode == 0, done.stderr
    for name, (role, password) in WEB_USERS.items():
        done = subprocess.run([*DIGITIZE, "user", "add", name, "--role", role, "--password-stdin"],
                              input=password + "\n", capture_output=True, text=True, cwd=PROJECT_ROOT,
                              env={**os.environ, "DIGITIZE_HOME": str(home)})
        assert done.returncode == 0, done.stderr
    return home


@pytest.fixture(scope="session")
def web_server(web_home):
    """`digitize serve` as a real process on a free local port; its base URL."""
    import time
    import urllib.request
    port = free_port()
    log = (web_home / "serve.log").open("w")
    server = subprocess.Popen([*DIGITIZE, "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=PROJECT_ROOT,
                              env={**os.environ, "DIGITIZE_HOME": str(web_home)}, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError((web_home / "serve.log").read_text())
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright (its own browser download is not possible here)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


# --- the catalogue on SQLite and on PostgreSQL ---
@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server for the whole test session (Debian's package), its admin URL."""
    import shutil
    import tempfile
    from tools import servers
    folder = Path(tempfile.mkdtemp(prefix="digitize-test-pg-"))
    try:
        with servers.postgres(folder, durable=False) as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_schemas = iter(range(1, 1_000_000))


def fresh_postgres_catalogue(admin_url: str) -> str:
    """An empty schema of its own on the session's server; the URL that makes it the catalogue."""
    import psycopg
    schema = f"test_{os.getpid()}_{next(_schemas)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{admin_url}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def catalogue_backend(request, monkeypatch) -> str:
    """Runs a test once on the SQLite file and once on PostgreSQL (DIGITIZE_DATABASE_URL,
    which store.connect and every `digitize` subprocess follow)."""
    if request.param == "sqlite":
        monkeypatch.delenv("DIGITIZE_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("DIGITIZE_DATABASE_URL", fresh_postgres_catalogue(request.getfixturevalue("postgres_url")))
    return request.param
