"""Several workers, one PostgreSQL catalogue, one Redis broker: a worker killed mid-run loses nothing,
does nothing twice, and the figures are those of one machine on SQLite."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pikepdf
import psycopg
import pytest

from digitize import store
from digitize.config import load_config
from tools import REPO_ROOT, servers, soak, synth

from .conftest import DIGITIZE, fresh_postgres_catalogue, json_lines, run_digitize

DOCUMENTS = 10
MISSING = 2  # dossiers of the registry with no scan
RECEIVED = re.compile(r"Task digitize\.process_document\[([0-9a-f-]+)\] received")
SUCCEEDED = re.compile(r"Task digitize\.process_document\[([0-9a-f-]+)\] succeeded")


@pytest.fixture
def broker(tmp_path):
    with servers.redis(tmp_path / "redis") as url:
        yield url


def _registry_and_scans(folder: Path) -> tuple[Path, Path]:
    """A registry of DOCUMENTS + MISSING dossiers of 2024-Q4, and one small one-page scan for
    each of the first DOCUMENTS, named by its dossier's code (linked by the file name)."""
    dossiers = [{**synth.make_fields(seed, sequence=seed + 1), "status": 4, "finished": None}
                for seed in range(DOCUMENTS + MISSING)]
    headers = {key: aliases[0] for key, aliases in load_config({})["registry"]["columns"].items()}
    registry = synth.write_registry(folder / "so-tiep-nhan.csv", dossiers, headers)
    scans = folder / "scans"
    scans.mkdir()
    for seed, dossier in enumerate(dossiers[:DOCUMENTS]):
        (scans / f"{dossier['dossier_code']}.jpg").write_bytes(soak.page_bytes(seed))
    return registry, scans


def _worker(home: Path, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([*DIGITIZE, "worker", "--concurrency", "1"], cwd=REPO_ROOT,
                            env={**os.environ, "DIGITIZE_HOME": str(home), **env},
                            stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=True)


def _in_flight(log: Path) -> set[str]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return set(RECEIVED.findall(text)) - set(SUCCEEDED.findall(text))


def _done_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT COUNT(*) FROM documents WHERE status = 'done'").fetchone()[0]


def _archive_files(home: Path) -> list[str]:
    archive = home / "archive"
    return sorted(str(path.relative_to(archive)) for path in archive.rglob("*") if path.is_file())


def test_two_workers_one_killed_mid_run_every_document_once_same_figures(tmp_path, postgres_url, broker):
    registry, scans = _registry_and_scans(tmp_path)

    # One machine, SQLite, no broker: the reference.
    alone = tmp_path / "alone"
    assert run_digitize(["registry", "import", str(registry)], alone).returncode == 0
    local = run_digitize(["process", str(scans), "--json"], alone)
    assert local.returncode == 0, local.stderr
    expected = run_digitize(["coverage", "--quarter", "2024-Q4", "--format", "json"], alone)
    assert expected.returncode == 0, expected.stderr

    # The centre: PostgreSQL, Redis, two workers; a task is handed out again 20 s after its worker died.
    centre = tmp_path / "centre"
    url = fresh_postgres_catalogue(postgres_url)
    env = {"DIGITIZE_DATABASE_URL": url, "DIGITIZE_BROKER_URL": broker, "DIGITIZE_TASK_VISIBILITY": "20"}
    assert run_digitize(["registry", "import", str(registry)], centre, **env).returncode == 0
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log", tmp_path / "worker-1-again.log"]
    workers = [_worker(centre, env, logs[0]), _worker(centre, env, logs[1])]
    try:
        waiting = subprocess.Popen([*DIGITIZE, "process", str(scans), "--queue", "--wait", "--json"], cwd=REPO_ROOT,
                                   env={**os.environ, "DIGITIZE_HOME": str(centre), **env},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Kill worker 1 (and its page processes) outright while it holds a document, with work left.
        deadline = time.monotonic() + 300
        while not (_in_flight(logs[0]) and 1 <= _done_rows(url) <= DOCUMENTS - 3):
            assert time.monotonic() < deadline, "worker 1 never took a document"
            assert waiting.poll() is None, "all done before a worker could be killed"
            time.sleep(0.2)
        lost = _in_flight(logs[0])
        os.killpg(workers[0].pid, signal.SIGKILL)
        workers[0].wait(30)
        state = json.loads(run_digitize(["status", "--json"], centre, **env).stdout)
        assert state["queue"]["broker"] == broker and len(state["queue"]["workers"]) == 1
        workers.append(_worker(centre, env, logs[2]))  # restarted
        out, err = waiting.communicate(timeout=600)
        assert waiting.returncode == 0, err
        # Queued again: nothing is redone (the same source and pipeline are the same document).
        again = run_digitize(["process", str(scans), "--queue", "--wait", "--json"], centre, timeout=300, **env)
        assert again.returncode == 0, again.stderr
        assert [r.get("already_done") for r in json_lines(again.stdout)] == [True] * DOCUMENTS
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(60)

    results = json_lines(out)
    assert len(results) == DOCUMENTS and all(r["status"] == "done" for r in results)
    # The document the dead worker held came back and was finished by a live one.
    finished_elsewhere = set(SUCCEEDED.findall(logs[1].read_text() + logs[2].read_text()))
    assert lost and lost <= finished_elsewhere

    # Every document once: one row, one version, one PDF; nothing half-written left behind.
    os.environ["DIGITIZE_DATABASE_URL"] = url
    try:
        conn = store.connect(centre / "unused")
        rows = store.list_documents(conn)
        versions = [len(store.document_versions(conn, row["id"])) for row in rows]
    finally:
        del os.environ["DIGITIZE_DATABASE_URL"]
    assert len(rows) == DOCUMENTS and len({row["sha256"] for row in rows}) == DOCUMENTS
    assert versions == [1] * DOCUMENTS
    assert all(row["link_status"] == "linked" and row["link_method"] == "filename" for row in rows)
    assert _archive_files(centre) == _archive_files(alone)
    assert not [name for name in _archive_files(centre) if name.endswith(".tmp") or "/." in name]
    for row in rows:
        with pikepdf.open(row["output"]) as pdf:
            assert str(pdf.docinfo["/Sha256"]) == row["sha256"] and len(pdf.pages) == 1

    # The same figures as one machine on SQLite.
    got = run_digitize(["coverage", "--quarter", "2024-Q4", "--format", "json"], centre, **env)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == json.loads(expected.stdout)
    [quarter] = json.loads(got.stdout)["periods"]
    assert (quarter["received"], quarter["digitised"]) == (DOCUMENTS + MISSING, DOCUMENTS)


def test_the_watcher_sends_its_files_to_the_workers(tmp_path, postgres_url, broker):
    """With a broker the watcher claims and files; a worker reads: done files reach the archive and
    their originals, a bad one goes to quarantine with its note, each recorded once."""
    home = tmp_path / "home"
    officer = home / "inbox" / "Nguyễn Văn An"
    officer.mkdir(parents=True)
    for seed in (21, 22):
        (officer / f"scan {seed}.jpg").write_bytes(soak.page_bytes(seed))
    (officer / "hong.jpg").write_bytes(b"\xff\xd8 not a picture at all")
    url = fresh_postgres_catalogue(postgres_url)
    env = {"DIGITIZE_DATABASE_URL": url, "DIGITIZE_BROKER_URL": broker}
    log = tmp_path / "worker.log"
    worker = _worker(home, env, log)
    try:
        watched = run_digitize(["watch", "--once"], home, timeout=600, **env)
        assert watched.returncode == 0, watched.stderr
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(60)
    assert len(RECEIVED.findall(log.read_text())) == 3  # every file was read by the worker
    os.environ["DIGITIZE_DATABASE_URL"] = url
    try:
        conn = store.connect(home / "unused")
        done = store.list_documents(conn, "done")
        failed = store.list_documents(conn, "failed")
        events = store.intake_events(conn, "quarantined")
    finally:
        del os.environ["DIGITIZE_DATABASE_URL"]
    assert sorted(Path(row["source"]).name for row in done) == ["scan 21.jpg", "scan 22.jpg"]
    for row in done:
        assert row["officer"] == "Nguyễn Văn An" and Path(row["output"]).exists()
        assert Path(row["original"]).exists() and "originals" in Path(row["original"]).parts
    quarantined = home / "quarantine" / "Nguyễn Văn An" / "hong.jpg"
    assert quarantined.exists() and quarantined.with_name("hong.jpg.error.txt").exists()
    assert [row["original"] for row in failed] == [str(quarantined)]
    assert [Path(event["kept"]) for event in events] == [quarantined]
    assert not list((home / "inbox").rglob("*.jpg")) and not list((home / "work" / "claimed").rglob("*.jpg"))


def test_reprocess_through_the_queue_marks_each_item_once(tmp_path, postgres_url, broker):
    home = tmp_path / "home"
    scans = tmp_path / "scans"
    scans.mkdir()
    for seed in (31, 32):
        (scans / f"trang {seed}.jpg").write_bytes(soak.page_bytes(seed))
    env = {"DIGITIZE_DATABASE_URL": fresh_postgres_catalogue(postgres_url)}
    assert run_digitize(["process", str(scans)], home, **env).returncode == 0
    env["DIGITIZE_BROKER_URL"] = broker
    command = ["reprocess", "--all", "--pipeline", "fast", "--queue", "--json"]
    sent = run_digitize(command, home, **env)
    assert sent.returncode == 0, sent.stderr
    [queued] = json_lines(sent.stdout)
    assert queued["event"] == "queued" and queued["documents"] == 2
    worker = _worker(home, env, tmp_path / "worker.log")
    os.environ["DIGITIZE_DATABASE_URL"] = env["DIGITIZE_DATABASE_URL"]
    try:
        conn = store.connect(home / "unused")
        deadline = time.monotonic() + 300
        while len(store.run_items(conn, queued["run"], "done")) < 2:
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.5)
        for row in store.list_documents(conn):
            assert row["pipeline"] == "fast" and len(store.document_versions(conn, row["id"])) == 2
        # Sent again (a second operator, a redelivery): every item is done already, nothing is redone.
        again = run_digitize(command, home, **env)
        assert "already_done" in again.stdout and json_lines(again.stdout)[0]["already_done"] == 2
        assert all(len(store.document_versions(conn, row["id"])) == 2 for row in store.list_documents(conn))
    finally:
        del os.environ["DIGITIZE_DATABASE_URL"]
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(60)
