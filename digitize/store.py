"""The catalogue. The only module that speaks SQL.

SQLite by default (WAL, one file under DIGITIZE_HOME); every query goes
through the functions here so PostgreSQL can take over later. Rows come back
as plain dicts.
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    part INTEGER NOT NULL DEFAULT 0,       -- n-th dossier of a multi-dossier feed
    first_page INTEGER NOT NULL DEFAULT 1,
    source TEXT NOT NULL,                  -- where the original was read from
    original TEXT,                         -- where the original is kept now
    output TEXT,
    text_path TEXT,
    pipeline TEXT,
    pipeline_hash TEXT,
    status TEXT NOT NULL,                  -- processing|done|failed|skipped|duplicate
    error TEXT,
    page_count INTEGER,
    officer TEXT,
    kind TEXT,
    dossier_code TEXT,
    link_status TEXT,                      -- linked|review|none
    link_method TEXT,
    link_confidence REAL,
    candidates TEXT,                       -- JSON
    fields TEXT,                           -- JSON
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (sha256, part)
);
CREATE INDEX IF NOT EXISTS documents_dossier ON documents (dossier_code);
CREATE INDEX IF NOT EXISTS documents_status ON documents (status);

CREATE TABLE IF NOT EXISTS pages (
    document_id INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    page_no INTEGER NOT NULL,
    orientation INTEGER,
    skew REAL,
    confidence REAL,
    text TEXT,
    PRIMARY KEY (document_id, page_no)
);

CREATE TABLE IF NOT EXISTS document_versions (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    output TEXT,
    pipeline TEXT,
    pipeline_hash TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS dossiers (
    code TEXT PRIMARY KEY,
    procedure_code TEXT,
    procedure_name TEXT,
    applicant TEXT,
    cccd TEXT,
    address TEXT,
    received_date TEXT,                    -- ISO yyyy-mm-dd
    due_date TEXT,
    finished_date TEXT,
    status INTEGER,
    officer TEXT,
    imported_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dossiers_received ON dossiers (received_date);
-- coverage reports: one index probe per dossier for "has a linked, digitised document"
CREATE INDEX IF NOT EXISTS documents_linked_done ON documents (dossier_code, kind)
    WHERE status = 'done' AND link_status = 'linked';

CREATE TABLE IF NOT EXISTS dossier_changes (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    changed_at TEXT NOT NULL
);
"""

DOCUMENT_COLUMNS = (
    "sha256", "part", "first_page", "source", "original", "output", "text_path",
    "pipeline", "pipeline_hash", "status", "error", "page_count", "officer", "kind",
    "dossier_code", "link_status", "link_method", "link_confidence", "candidates", "fields",
)
JSON_COLUMNS = ("candidates", "fields")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def connect(path: Path | str) -> sqlite3.Connection:
    """Open (and create) the catalogue."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(SCHEMA)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _document_row(row: sqlite3.Row | None) -> dict | None:
    if row is None:
        return None
    document = dict(row)
    for column in JSON_COLUMNS:
        if document.get(column):
            document[column] = json.loads(document[column])
    return document


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    encoded = {}
    for key, value in values.items():
        if key not in DOCUMENT_COLUMNS:
            raise KeyError(f"unknown document column {key!r}")
        encoded[key] = json.dumps(value, ensure_ascii=False) if key in JSON_COLUMNS and value is not None else value
    return encoded


def save_document(conn: sqlite3.Connection, values: dict[str, Any]) -> int:
    """Insert or update the document identified by (sha256, part); its id."""
    values = _encode({"part": 0, **values})
    stamp = now_iso()
    columns = list(values)
    updates = ", ".join(f"{c}=excluded.{c}" for c in columns if c not in ("sha256", "part"))
    conn.execute(
        f"INSERT INTO documents ({', '.join(columns)}, created_at, updated_at) "
        f"VALUES ({', '.join('?' for _ in columns)}, ?, ?) "
        f"ON CONFLICT (sha256, part) DO UPDATE SET {updates}, updated_at=excluded.updated_at",
        [*values.values(), stamp, stamp],
    )
    row = conn.execute(
        "SELECT id FROM documents WHERE sha256=? AND part=?", (values["sha256"], values["part"])
    ).fetchone()
    return int(row["id"])


def update_document(conn: sqlite3.Connection, document_id: int, **values: Any) -> None:
    values = _encode(values)
    assignments = ", ".join(f"{c}=?" for c in values)
    conn.execute(
        f"UPDATE documents SET {assignments}, updated_at=? WHERE id=?",
        [*values.values(), now_iso(), document_id],
    )


def save_pages(conn: sqlite3.Connection, document_id: int, pages: list[dict]) -> None:
    """Replace the page rows of a document."""
    conn.execute("DELETE FROM pages WHERE document_id=?", (document_id,))
    conn.executemany(
        "INSERT INTO pages (document_id, page_no, orientation, skew, confidence, text) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (document_id, page["page_no"], page.get("orientation"), page.get("skew"),
             page.get("confidence"), page.get("text"))
            for page in pages
        ],
    )


def record_version(conn: sqlite3.Connection, document_id: int, output: str, pipeline: str,
                   pipeline_hash: str) -> None:
    conn.execute(
        "INSERT INTO document_versions (document_id, output, pipeline, pipeline_hash, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (document_id, output, pipeline, pipeline_hash, now_iso()),
    )


def get_document(conn: sqlite3.Connection, document_id: int) -> dict | None:
    return _document_row(conn.execute("SELECT * FROM documents WHERE id=?", (document_id,)).fetchone())


def documents_by_sha(conn: sqlite3.Connection, sha256: str) -> list[dict]:
    rows = conn.execute("SELECT * FROM documents WHERE sha256=? ORDER BY part", (sha256,))
    return [_document_row(row) for row in rows]


def list_documents(conn: sqlite3.Connection, status: str | None = None) -> list[dict]:
    if status:
        rows = conn.execute("SELECT * FROM documents WHERE status=? ORDER BY id", (status,))
    else:
        rows = conn.execute("SELECT * FROM documents ORDER BY id")
    return [_document_row(row) for row in rows]


def get_pages(conn: sqlite3.Connection, document_id: int) -> list[dict]:
    rows = conn.execute("SELECT * FROM pages WHERE document_id=? ORDER BY page_no", (document_id,))
    return [dict(row) for row in rows]


def document_versions(conn: sqlite3.Connection, document_id: int) -> list[dict]:
    rows = conn.execute(
        "SELECT * FROM document_versions WHERE document_id=? ORDER BY id", (document_id,)
    )
    return [dict(row) for row in rows]


def save_result(conn: sqlite3.Connection, result: dict, pipeline: dict, officer: str | None = None,
                original: str | None = None) -> int:
    """Record one engine result (document row, its pages, a version); the document id."""
    with transaction(conn):
        document_id = save_document(conn, {
            "sha256": result["sha256"],
            "source": result["source"],
            "original": original,
            "output": result["output"],
            "text_path": result["text_path"],
            "pipeline": pipeline["name"],
            "pipeline_hash": pipeline["hash"],
            "status": result["status"],
            "error": result["error"],
            "page_count": len(result["pages"]) or None,
            "officer": officer,
        })
        save_pages(conn, document_id, [
            {"page_no": number, **page} for number, page in enumerate(result["pages"], start=1)
        ])
        if result["output"]:
            record_version(conn, document_id, result["output"], pipeline["name"], pipeline["hash"])
    return document_id


# --- coverage ---
DOSSIER_COLUMNS = ("code", "procedure_code", "procedure_name", "applicant", "cccd", "address",
                   "received_date", "due_date", "finished_date", "status", "officer")
_COVERAGE_SELECT = """
SELECT d.code, d.procedure_code, d.procedure_name, d.applicant, d.received_date, d.due_date,
       d.finished_date, d.status, d.officer,
       EXISTS (SELECT 1 FROM documents x WHERE x.dossier_code = d.code
               AND x.status = 'done' AND x.link_status = 'linked') AS has_document,
       EXISTS (SELECT 1 FROM documents x WHERE x.dossier_code = d.code AND x.kind = 'result'
               AND x.status = 'done' AND x.link_status = 'linked') AS has_result
FROM dossiers d
"""
_ISO_DAY = "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'"


def coverage_dossiers(conn: sqlite3.Connection, start: str, end: str) -> list[dict]:
    """Dossiers a report on [start, end] (ISO days) needs, each with has_document and has_result.

    Those received by `end` and still relevant on `start` (received in the range, or
    finished on/after it, or not finished), then every dossier with no usable
    received day (they belong to no period; the report counts them apart).
    """
    rows = conn.execute(
        _COVERAGE_SELECT + "WHERE d.received_date <= :end AND d.received_date GLOB " + _ISO_DAY +
        " AND (d.received_date >= :start OR d.finished_date IS NULL OR d.finished_date >= :start)",
        {"start": start, "end": end},
    ).fetchall()
    rows += conn.execute(
        _COVERAGE_SELECT + "WHERE d.received_date IS NULL OR d.received_date NOT GLOB " + _ISO_DAY
    ).fetchall()
    return [{**dict(row), "has_document": bool(row["has_document"]), "has_result": bool(row["has_result"])}
            for row in rows]


def insert_dossiers(conn: sqlite3.Connection, dossiers: list[dict]) -> None:
    """Plain bulk insert of registry rows (tests, benchmarks); the registry import tracks changes itself."""
    stamp = now_iso()
    conn.executemany(
        f"INSERT INTO dossiers ({', '.join(DOSSIER_COLUMNS)}, imported_at, updated_at) "
        f"VALUES ({', '.join('?' for _ in DOSSIER_COLUMNS)}, ?, ?)",
        [[dossier.get(column) for column in DOSSIER_COLUMNS] + [stamp, stamp] for dossier in dossiers],
    )


def insert_documents(conn: sqlite3.Connection, documents: list[dict]) -> None:
    """Bulk insert of document rows (benchmarks); save_document is the one-at-a-time upsert."""
    stamp = now_iso()
    encoded = [_encode({"part": 0, **document}) for document in documents]
    conn.executemany(
        f"INSERT INTO documents ({', '.join(DOCUMENT_COLUMNS)}, created_at, updated_at) "
        f"VALUES ({', '.join('?' for _ in DOCUMENT_COLUMNS)}, ?, ?)",
        [[document.get(column) for column in DOCUMENT_COLUMNS] + [stamp, stamp] for document in encoded],
    )
