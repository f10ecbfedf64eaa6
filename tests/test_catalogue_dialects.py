"""The same catalogue on SQLite and on PostgreSQL: the same figures, and many writers at once."""
from __future__ import annotations

import multiprocessing
import os
import sqlite3

import pytest

from digitize import store
from digitize.config import load_config
from digitize.models import DONE, FAILED, DocumentResult, LinkDecision, PageReading, Part
from digitize.periods import parse_label
from digitize.reports import build as build_report

from . import quarter_registry
from .conftest import fresh_postgres_catalogue, run_digitize

PIPELINE = {"name": "standard", "hash": "h1"}
STAMPS = ("created_at", "updated_at", "imported_at", "changed_at", "started_at", "finished_at")


def _open(backend: str, tmp_path, monkeypatch, postgres_url: str | None):
    if backend == "postgresql":
        monkeypatch.setenv("DIGITIZE_DATABASE_URL", fresh_postgres_catalogue(postgres_url))
    else:
        monkeypatch.delenv("DIGITIZE_DATABASE_URL", raising=False)
    return store.connect(tmp_path / f"{backend}.sqlite")


def _unstamped(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in STAMPS} for row in rows]


def _result(sha: str, source: str, dossier: str | None, status: str = DONE, confidence: float = 0.8731,
            warnings: tuple[dict, ...] = ()) -> DocumentResult:
    link = LinkDecision("linked", "barcode", confidence, dossier) if dossier else \
        LinkDecision("review", candidates=({"code": "X", "score": 0.41, "evidence": ["tên / name"]},))
    part = Part(0, 1, 1, f"/archive/{sha}.pdf", f"/archive/{sha}.txt", link, {"kind": "component"}, warnings)
    return DocumentResult(source, sha, status, (PageReading(0, 0.12, 91.5, "Giấy khai sinh"),),
                          (part,) if status == DONE else (), error=None if status == DONE else "hỏng / broken")


def _fill(conn) -> None:
    quarter_registry.build(conn)
    # Registry rows the registry could not fully read: a status name kept as text, no received day.
    store.upsert_dossiers(conn, [
        {"code": "000.00.06.H56-240815-7001", "received_date": "15/08/2024", "status": "Đang xử lý"},
        {"code": "000.00.06.H56-240815-7002", "received_date": None, "status": "10"},
        {"code": quarter_registry.quarter_code(1), "received_date": "2024-07-02", "status": 5,
         "officer": "Lê Văn Cường"},
    ])
    for index in range(6):
        store.record_result(conn, _result(f"r{index}", f"/inbox/ca [{index}]/scan {index}.pdf",
                                          quarter_registry.quarter_code(index) if index % 2 else None), PIPELINE,
                            officer="Trần Thị Bình")
    store.record_result(conn, _result("r0", "/elsewhere/scan 0.pdf", None, status=FAILED), PIPELINE)
    # Linked, but a page below 200 dpi: in review all the same (a rescan); a grey page alone is not.
    for sha, rule in (("low-dpi", "resolution"), ("grey", "colour")):
        store.record_result(conn, _result(sha, f"/inbox/{sha}.jpg", quarter_registry.quarter_code(2),
                                          warnings=({"page": 1, "rule": rule, "message": "…"},)), PIPELINE)
    key = "run-1"
    store.open_run(conn, key, {"all": True}, [1, 2, 3], restart=False)
    store.add_run_time(conn, key, 7, 3.5, 2, finished=True)


def _figures(conn) -> dict:
    config = load_config()
    period = parse_label("2024-Q3", config["periods"]["cutoff_day"])
    report = build_report(conn, [period], config, today=quarter_registry.QUARTER_START.replace(month=11), by=("officer",))
    return {
        # A set of dossiers (in no promised order); the report built on it is compared as it is.
        "coverage": sorted(_unstamped(store.coverage_dossiers(conn, "2024-07-01", "2024-09-30")),
                           key=lambda d: d["code"]),
        "report": report,
        "review": _unstamped(store.documents_in_review(conn)),
        "watch": {k: v for k, v in store.watch_counts(conn, "2000-01-01").items() if k not in ("last_unsigned",)},
        "dossiers": _unstamped(store.list_dossiers(conn)),
        "quarter": _unstamped(store.list_dossiers(conn, "2024-07-01", "2024-09-30")),
        "changes": _unstamped(store.dossier_changes(conn, quarter_registry.quarter_code(1))),
        "documents": _unstamped(store.list_documents(conn)),
        "pages": store.get_pages(conn, 1),
        "versions": _unstamped(store.document_versions(conn, 1)),
        "globbed": [row["id"] for row in store.select_for_reprocess(conn, source_glob="/inbox/ca [[]?]/*")],
        "older": [row["id"] for row in store.select_for_reprocess(conn, older_than={"standard": "h2"})],
        "relink": [row["id"] for row in store.documents_to_relink(conn)],
        # The search index: FTS5 on SQLite, a tsvector table on PostgreSQL; the same documents found
        # (ranked by each one's own measure, bm25 or ts_rank: the order of equals may differ).
        "search": [sorted(row["id"] for row in store.search_documents(conn, **query)) for query in (
            {"match": '"giay" "khai"*'}, {"match": '"ca"*'}, {"match": '"khong" "co"'},
            {"match": '"giay"', "status": "review"}, {"dossier": quarter_registry.quarter_code(1)})],
        "speed": store.seconds_per_page_per_worker(conn),
        "stamp": store.registry_stamp(conn)[:1],
    }


def test_coverage_review_and_selections_are_identical_on_both(tmp_path, monkeypatch, postgres_url):
    found = {}
    for backend in ("sqlite", "postgresql"):
        conn = _open(backend, tmp_path, monkeypatch, postgres_url)
        _fill(conn)
        found[backend] = _figures(conn)
        conn.close()
    sqlite_figures, postgres_figures = found["sqlite"], found["postgresql"]
    for key in sqlite_figures:
        assert postgres_figures[key] == sqlite_figures[key], key
    # The figures are not empty ones: the quarter's known answer and every selector found rows.
    assert sum(d["has_document"] for d in sqlite_figures["coverage"]) >= 255
    assert len(sqlite_figures["globbed"]) == 6
    assert all(sqlite_figures["search"][:2]) and not sqlite_figures["search"][2]
    assert sqlite_figures["older"] and sqlite_figures["review"] and sqlite_figures["changes"]
    assert "low-dpi" in {d["sha256"] for d in sqlite_figures["review"]}
    assert "grey" not in {d["sha256"] for d in sqlite_figures["review"]}
    assert sqlite_figures["speed"] == pytest.approx(1.0)
    statuses = {d["code"]: d["status"] for d in sqlite_figures["dossiers"]}
    assert statuses["000.00.06.H56-240815-7001"] == "Đang xử lý" and statuses["000.00.06.H56-240815-7002"] == 10


@pytest.mark.parametrize("pattern", ["*", "/a/*.pdf", "/a/?.pdf", "/a/[bc]*", "/a/[^b]*", "*.[pP][dD][fF]",
                                     "/a/b (1).pdf", "/a/$x+y^.pdf", "*[*]*", "/A/*"])
def test_glob_patterns_match_the_same_on_both(pattern, postgres_url):
    names = ["/a/b.pdf", "/a/c.PDF", "/a/b (1).pdf", "/a/$x+y^.pdf", "/a/d*e.pdf", "/A/x.pdf", "/a/x\\y.pdf"]
    import psycopg
    lite = sqlite3.connect(":memory:")
    expected = [name for name in names if lite.execute("SELECT ? GLOB ?", (name, pattern)).fetchone()[0]]
    with psycopg.connect(postgres_url) as conn:
        regex = store.glob_regex(pattern)
        got = [name for name in names if conn.execute("SELECT %s ~ %s", (name, regex)).fetchone()[0]]
    assert got == expected


def _writer(url: str, worker: int, rounds: int) -> None:
    """One of several processes writing the same documents, dossiers and run at once."""
    os.environ["DIGITIZE_DATABASE_URL"] = url
    conn = store.connect("unused")
    for round_no in range(rounds):
        for sha in ("shared-a", "shared-b", f"own-{worker}-{round_no}"):
            store.record_result(conn, _result(sha, f"/inbox/w{worker}/{sha}.pdf", "000.00.06.H56-240701-0001"),
                                PIPELINE, officer=f"officer {worker}")
        store.upsert_dossiers(conn, [{"code": f"000.00.06.H56-240701-{n:04d}", "received_date": "2024-07-01",
                                      "status": 1 + (round_no + worker) % 3} for n in range(5)])
        store.add_run_time(conn, "shared-run", 1, 0.5, 1, finished=False)
    conn.close()


def test_many_writers_at_once_lose_nothing_on_postgres(postgres_url):
    url = fresh_postgres_catalogue(postgres_url)
    os.environ["DIGITIZE_DATABASE_URL"] = url
    try:
        conn = store.connect("unused")
        store.open_run(conn, "shared-run", {}, [], restart=False)
        workers, rounds = 6, 5
        context = multiprocessing.get_context("spawn")
        processes = [context.Process(target=_writer, args=(url, w, rounds)) for w in range(workers)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(120)
            assert process.exitcode == 0
        documents = store.list_documents(conn)
        # One row per document, however many writers met on it; every write a version of it.
        assert sorted(d["sha256"] for d in documents) == sorted(
            ["shared-a", "shared-b"] + [f"own-{w}-{r}" for w in range(workers) for r in range(rounds)])
        for sha in ("shared-a", "shared-b"):
            [row] = store.documents_by_sha(conn, sha)
            assert len(store.document_versions(conn, row["id"])) == workers * rounds
            # The first writer's source and officer stay: later versions never replace them.
            first = row["source"].split("/")[2]
            assert row["officer"] == f"officer {first[1:]}"
        # The run's counter took every increment; the registry has each dossier once.
        run = conn.execute("SELECT pages_done FROM reprocess_runs WHERE key='shared-run'").fetchone()
        assert run["pages_done"] == workers * rounds
        assert len(store.list_dossiers(conn)) == 5
        assert store.schema_version(conn) == len(store.MIGRATIONS)
    finally:
        del os.environ["DIGITIZE_DATABASE_URL"]


def test_a_server_that_is_not_there_is_a_machine_fault_said_without_the_password(tmp_path):
    from tools.servers import free_port
    url = f"postgresql://nobody:secret@127.0.0.1:{free_port()}/none"
    environment = {"DIGITIZE_DATABASE_URL": url, "PGCONNECT_TIMEOUT": "5"}
    os.environ.update(environment)
    try:
        with pytest.raises(sqlite3.OperationalError):  # what the watcher waits out, as a full disk
            store.connect(tmp_path / "unused.sqlite")
        assert "secret" not in store.location(tmp_path / "unused.sqlite")
    finally:
        for name in environment:
            del os.environ[name]
    shown = run_digitize(["review"], tmp_path / "home", **environment)
    assert shown.returncode == 10 and "Cannot reach the catalogue server" in shown.stderr
    assert "secret" not in shown.stderr


def test_urls_that_are_not_postgresql_or_redis_are_bad_settings(tmp_path):
    scan = tmp_path / "a.jpg"
    scan.write_bytes(b"")
    wrong = run_digitize(["review"], tmp_path / "home", DIGITIZE_DATABASE_URL="mysql://x@y/z")
    assert wrong.returncode == 9 and "DIGITIZE_DATABASE_URL" in wrong.stderr
    wrong = run_digitize(["process", str(scan), "--queue"], tmp_path / "home", DIGITIZE_BROKER_URL="amqp://x")
    assert wrong.returncode == 9 and "DIGITIZE_BROKER_URL" in wrong.stderr
    missing = run_digitize(["process", str(scan), "--queue"], tmp_path / "home")
    assert missing.returncode == 9 and "--queue" in missing.stderr


def test_one_query_text_means_the_same_on_both(tmp_path, monkeypatch, postgres_url):
    """? and :name parameters, and ?, :, % and quotes inside quoted text, read alike by both."""
    query = "SELECT '50%' AS a, ? AS b, 'it''s ? :x' AS c, :n AS d"
    answers = []
    for backend in ("sqlite", "postgresql"):
        conn = _open(backend, tmp_path, monkeypatch, postgres_url)
        answers.append([list(conn.execute(query.replace(":n", "?"), ("x%", 3)).fetchone()),
                        dict(conn.execute("SELECT :n AS d, :n + 1 AS e", {"n": 3}).fetchone())])
        conn.close()
    assert answers[0] == answers[1] == [["50%", "x%", "it's ? :x", 3], {"d": 3, "e": 4}]
