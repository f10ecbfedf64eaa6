"""The catalogue. The only module that speaks SQL.

SQLite by default (WAL, one file under DIGITIZE_HOME); PostgreSQL when
DIGITIZE_DATABASE_URL=postgresql://… is set, for a centre where several machines
write at once. Every query goes through the functions here, written once in the
SQL both accept; the few places the dialects differ (GLOB, IS NOT, the schema
version, identity columns, row locks) are settled here and nowhere else. Rows
come back as plain dicts. The schema is versioned: MIGRATIONS are applied in
order, once, when a catalogue is opened (SQLite: PRAGMA user_version counts
those applied; PostgreSQL: the schema_version table).

On PostgreSQL the connection is a PostgresConnection: the sqlite3 connection's
interface (execute with ? and :name parameters, rows by index and by name) over
psycopg, its errors raised as the DB-API classes sqlite3 names (a lost server is
an OperationalError, a machine fault, as a locked or full SQLite file is), so
the rest of the program handles one family of catalogue errors.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

from .config import url_from_environment
from .errors import CatalogueError
from .models import FAILED, DocumentResult, LinkDecision, Part
from .vntext import fold_keep_length, nfc

DOCUMENTS_SCHEMA = """
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
    "signature_status", "signature_reason", "warnings",
)
JSON_COLUMNS = ("candidates", "fields", "warnings")


# --- dialects ---
# The SQL here is written as SQLite reads it; PostgreSQL gets these translations.
MIGRATION_LOCK = 0x6469676974  # "digit": the advisory lock of schema migrations
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|::|\?|:([A-Za-z_]\w*)|%")


@lru_cache(maxsize=512)
def _pyformat(sql: str) -> str:
    """? and :name → %s and %(name)s, a literal % doubled; quoted text and :: casts left alone."""
    def swap(match: re.Match) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        if match.group(1):
            return f"%({match.group(1)})s"
        return token.replace("%", "%%")  # psycopg reads % inside quoted text too
    return _PLACEHOLDER.sub(swap, sql)


def _postgres_ddl(script: str) -> str:
    """SQLite DDL as PostgreSQL takes it, with the same results: an identity column for
    INTEGER PRIMARY KEY, double precision for REAL (PostgreSQL's REAL is 4 bytes), byte-order
    text (COLLATE "C", as SQLite's BINARY: the same ORDER BY and comparisons on every
    server whatever its locale), and dossiers.status as text, since SQLite's integer
    affinity keeps a status name the registry could not read as a number (read back: _affinity)."""
    script = script.replace("    status INTEGER,", "    status TEXT,")
    script = script.replace("INTEGER PRIMARY KEY", "INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
    script = re.sub(r"\bREAL\b", "DOUBLE PRECISION", script)
    return re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', script)


def _script(migration: str | dict[str, str], dialect: str) -> str:
    """A migration is SQL both dialects run (PostgreSQL's DDL translated), or one text per dialect."""
    if isinstance(migration, dict):
        return migration[dialect]
    return _postgres_ddl(migration) if dialect == "postgresql" else migration


def _affinity(value: Any) -> Any:
    """SQLite's integer affinity on a PostgreSQL text column: "10" reads back as 10."""
    if isinstance(value, str) and re.fullmatch(r"-?[1-9][0-9]{0,17}|0", value):
        return int(value)
    return value


def glob_regex(pattern: str) -> str:
    """A SQLite GLOB pattern (case-sensitive *, ?, [...], [^...]) as an anchored POSIX regex."""
    out, i = ["^"], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[" and (end := pattern.find("]", i + 2)) != -1:
            inner = pattern[i + 1:end]
            out.append("[" + ("^" + inner[1:] if inner.startswith("^") else inner).replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.sub(r"([^\w\s])", r"\\\1", char))
        i += 1
    return "".join(out) + "$"


def is_postgres(conn: Any) -> bool:
    return isinstance(conn, PostgresConnection)


def _glob(conn: Any, column: str, pattern: str) -> str:
    """`column GLOB pattern` (a literal pattern or ?) in the connection's dialect."""
    if not is_postgres(conn):
        return f"{column} GLOB {pattern}"
    return f"{column} ~ " + (pattern if pattern == "?" else "'" + glob_regex(pattern.strip("'")) + "'")


def _for_update(conn: Any) -> str:
    """Row locks on a read that a write will follow (SQLite's BEGIN IMMEDIATE locks it all)."""
    return " FOR UPDATE" if is_postgres(conn) else ""


class Row:
    """A row as sqlite3.Row gives it: by index, by column name, keys() for dict(row)."""

    __slots__ = ("_values", "_index")

    def __init__(self, values: tuple, index: dict[str, int]):
        self._values, self._index = values, index

    def __getitem__(self, key: int | str) -> Any:
        return self._values[key if isinstance(key, int) else self._index[key]]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class Cursor:
    """The part of sqlite3.Cursor the catalogue uses, over a psycopg cursor."""

    def __init__(self, cursor: Any):
        self._cursor = cursor
        self.row_factory: Any = Row  # None: plain tuples, as with sqlite3

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def _row(self, values: tuple | None) -> Any:
        if values is None or self.row_factory is None:
            return values
        return Row(values, {column.name: i for i, column in enumerate(self._cursor.description)})

    def fetchone(self) -> Any:
        with _translated():
            return self._row(self._cursor.fetchone())

    def fetchall(self) -> list:
        with _translated():
            rows = self._cursor.fetchall()
        if self.row_factory is None or not rows:
            return rows
        index = {column.name: i for i, column in enumerate(self._cursor.description)}
        return [Row(values, index) for values in rows]

    def __iter__(self):
        return iter(self.fetchall())


_ERRORS = (  # psycopg's class → sqlite3's of the same DB-API name (most specific first)
    ("IntegrityError", sqlite3.IntegrityError), ("DataError", sqlite3.DataError),
    ("ProgrammingError", sqlite3.ProgrammingError), ("NotSupportedError", sqlite3.NotSupportedError),
    ("OperationalError", sqlite3.OperationalError), ("InternalError", sqlite3.InternalError),
    ("InterfaceError", sqlite3.InterfaceError), ("DatabaseError", sqlite3.DatabaseError),
)


@contextmanager
def _translated() -> Iterator[None]:
    import psycopg
    try:
        yield
    except psycopg.Error as exc:
        for name, ours in _ERRORS:
            if isinstance(exc, getattr(psycopg, name)):
                raise ours(str(exc).strip()) from exc
        raise sqlite3.Error(str(exc).strip()) from exc


class PostgresConnection:
    """The sqlite3.Connection interface the catalogue uses, over one psycopg connection in
    autocommit (each statement its own transaction unless inside transaction())."""

    def __init__(self, raw: Any, url: str):
        self.raw, self.url = raw, url

    @classmethod
    def open(cls, url: str) -> "PostgresConnection":
        try:
            import psycopg
            from psycopg.types.numeric import NumericLoader
        except ImportError as exc:
            from .errors import MissingDependencyError
            raise MissingDependencyError("Thiếu gói psycopg để dùng PostgreSQL.", "psycopg is needed for PostgreSQL.",
                                    "Cài: pip install 'psycopg[binary]'.", "Install it: pip install 'psycopg[binary]'.") from exc

        class NumberLoader(NumericLoader):
            """SUM and friends return numeric: an int when whole, else a float, as SQLite gives."""

            def load(self, data: Any) -> Any:
                value: Decimal = super().load(data)
                return int(value) if value == value.to_integral_value() else float(value)

        with _translated():
            raw = psycopg.connect(url, autocommit=True, connect_timeout=30)
        raw.adapters.register_loader("numeric", NumberLoader)
        return cls(raw, url)

    @staticmethod
    def _params(params: Any) -> Any:
        """Booleans as 0/1, as SQLite stores them (PostgreSQL will not put a boolean in an integer)."""
        if isinstance(params, dict):
            return {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}
        return [int(v) if isinstance(v, bool) else v for v in params]

    def execute(self, sql: str, params: Any = ()) -> Cursor:
        cursor = self.raw.cursor()
        with _translated():
            cursor.execute(_pyformat(sql), self._params(params))
        return Cursor(cursor)

    def executemany(self, sql: str, rows: Any) -> None:
        rows = [self._params(row) for row in rows]
        if rows:
            with _translated(), self.raw.cursor() as cursor:
                cursor.executemany(_pyformat(sql), rows)

    def executescript(self, script: str) -> None:
        with _translated():
            self.raw.execute(script)  # no parameters: several statements in one go

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with _translated(), self.raw.transaction():
            yield

    @property
    def in_transaction(self) -> bool:
        import psycopg
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


DATABASE_URL_VARIABLE = "DIGITIZE_DATABASE_URL"


def database_url() -> str | None:
    """The PostgreSQL catalogue's URL when one is configured, else None (SQLite)."""
    return url_from_environment(DATABASE_URL_VARIABLE, ("postgresql", "postgres"), "postgresql://user@host/database")


def shown_url(url: str) -> str:
    """The URL without its password, fit for messages and status."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def location(path: Path | str) -> str:
    """Where the catalogue lives: the PostgreSQL URL (no password) or the SQLite file."""
    url = database_url()
    return shown_url(url) if url else str(path)


def exists(path: Path | str) -> bool:
    """Whether there is a catalogue to read: a PostgreSQL one always is (connect creates its tables)."""
    return database_url() is not None or Path(path).exists()


def identity(path: Path | str) -> str | None:
    """What changes when the catalogue is replaced (the file's inode; a server's URL never
    changes); None when a catalogue file was deleted."""
    url = database_url()
    if url:
        return shown_url(url)
    try:
        return str(os.stat(path).st_ino)
    except FileNotFoundError:
        return None


def connect(path: Path | str):
    """Open (and create, or bring up to date) the catalogue: PostgreSQL when
    DIGITIZE_DATABASE_URL is set, else the SQLite file at `path`."""
    url = database_url()
    if url:
        conn = PostgresConnection.open(url)
        try:
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        # The search index's accent folding, for the web migration and index_document (see WEB_SCHEMA).
        conn.create_function("fold", 1, _fold, deterministic=True)
        migrate(conn)
    except sqlite3.OperationalError:  # full disk, locked, unreadable: the machine's, not damage
        conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise damaged(path, exc) from exc
    return conn


def damaged(path: Path | str, exc: Exception) -> CatalogueError:
    url = database_url()
    if url and isinstance(exc, sqlite3.OperationalError):
        return CatalogueError(f"Không kết nối được máy chủ danh mục {shown_url(url)} ({exc}).",
                              f"Cannot reach the catalogue server {shown_url(url)} ({exc}).",
                              "Kiểm tra máy chủ PostgreSQL, mạng và DIGITIZE_DATABASE_URL.",
                              "Check the PostgreSQL server, the network and DIGITIZE_DATABASE_URL.")
    return CatalogueError(f"Tệp danh mục {path} bị hỏng hoặc không phải cơ sở dữ liệu ({exc}).",
                          f"The catalogue {path} is damaged or not a database ({exc}).")


def check(conn: sqlite3.Connection, path: Path | str) -> None:
    """PRAGMA quick_check: a CatalogueError unless the catalogue's pages are sound (on
    PostgreSQL the server keeps its own pages: a query that answers is enough)."""
    if is_postgres(conn):
        conn.execute("SELECT 1").fetchone()
        return
    try:
        verdict = [row[0] for row in conn.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        raise damaged(path, exc) from exc
    if verdict != ["ok"]:
        raise damaged(path, "; ".join(verdict[:3]))


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations this catalogue has not had yet, each in its own transaction."""
    if is_postgres(conn):
        _migrate_postgres(conn)
        return
    applied = conn.execute("PRAGMA user_version").fetchone()[0]
    for version, script in enumerate(MIGRATIONS[applied:], start=applied + 1):
        try:
            conn.executescript(f"BEGIN IMMEDIATE; {_script(script, 'sqlite')}; "
                               f"PRAGMA user_version = {version}; COMMIT;")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # Another process opening the catalogue at the same moment may have applied it first.
            if conn.execute("PRAGMA user_version").fetchone()[0] < version:
                raise


def _migrate_postgres(conn: PostgresConnection) -> None:
    """PostgreSQL keeps the count in schema_version; an advisory lock lets one opener at a
    time migrate, so machines starting together apply each migration once."""
    for version in range(1, len(MIGRATIONS) + 1):
        with transaction(conn):
            conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (0)")
            if (row[0] if row else 0) >= version:
                continue
            conn.executescript(_script(MIGRATIONS[version - 1], "postgresql"))
            conn.execute("UPDATE schema_version SET version = ?", (version,))


def schema_version(conn: sqlite3.Connection) -> int:
    if is_postgres(conn):
        return int(conn.execute("SELECT version FROM schema_version").fetchone()[0])
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One transaction. SQLite's BEGIN IMMEDIATE takes the write lock at once (writers queue
    up); PostgreSQL's rows are locked where a writer reads what it will change (for_update)."""
    if is_postgres(conn):
        with conn.transaction():
            yield conn
        return
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


def _lock_document(conn: sqlite3.Connection, sha256: str) -> None:
    """Writers of one document's rows take turns until their transaction ends, so what one
    read of the old rows (first source, manual link) still holds when it writes, even where
    no row exists yet to lock (SQLite: BEGIN IMMEDIATE already serialises every writer)."""
    if is_postgres(conn):
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (sha256,))


def record_result(conn: sqlite3.Connection, result: DocumentResult, pipeline: dict,
                  officer: str | None = None, original: str | None = None,
                  also: Callable[[sqlite3.Connection], None] | None = None) -> list[int]:
    """Record one document's result, one transaction: a row per dossier part (keyed by the
    source's sha256 and the part number), its pages, its link and a version; the ids.

    A document seen before is a new version of itself: its source, original and officer
    stay as first recorded (a rerun from another folder loses none of them); a failed run
    never replaces a done or skipped row, so the previous good output still counts; an
    automatic link never replaces a manual one. `also` runs inside the same transaction
    (reprocessing marks its run item there).
    """
    parts = result.parts or (Part(0, 1, len(result.pages), None, None),)
    ids = []
    with transaction(conn):
        _lock_document(conn, result.sha256)
        for part in parts:
            old = conn.execute("SELECT * FROM documents WHERE sha256=? AND part=?",
                               (result.sha256, part.number)).fetchone()
            if old is not None and result.status == FAILED and old["status"] != FAILED:
                ids.append(int(old["id"]))
                continue
            document_id = save_document(conn, {
                "sha256": result.sha256,
                "part": part.number,
                "first_page": part.first_page,
                "source": old["source"] if old else result.source,
                "original": (old["original"] if old else None) or original,
                "officer": (old["officer"] if old else None) or officer,
                "output": part.output,
                "text_path": part.text_path,
                "pipeline": pipeline["name"],
                "pipeline_hash": pipeline["hash"],
                "status": result.status,
                "error": result.error,
                "page_count": (part.last_page - part.first_page + 1) or None,
                "kind": part.kind,
                "fields": part.fields or None,
                "warnings": list(part.warnings) or None,
                "signature_status": part.signature.status if part.signature else None,
                "signature_reason": part.signature.reason if part.signature else None,
            })
            save_pages(conn, document_id, [
                {"page_no": number, "orientation": page.orientation, "skew": page.skew,
                 "confidence": page.confidence, "text": page.text}
                for number, page in enumerate(result.pages[part.first_page - 1:part.last_page], start=1)
            ])
            if result.status != FAILED:
                set_link(conn, document_id, part.link)
            if part.output:
                record_version(conn, document_id, part.output, pipeline["name"], pipeline["hash"])
            index_document(conn, document_id)  # search index hook: see WEB_SCHEMA
            ids.append(document_id)
        if also is not None:
            also(conn)
    return ids


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


def _tuples(conn: sqlite3.Connection, query: str, params: Any) -> tuple[list[str], Any]:
    """Column names and plain tuples: about twice as fast as rows by name on 100k rows."""
    cursor = conn.execute(query, params)
    cursor.row_factory = None
    return [column[0] for column in cursor.description], cursor


def coverage_dossiers(conn: sqlite3.Connection, start: str, end: str) -> list[dict]:
    """Dossiers a report on [start, end] (ISO days) needs, each with has_document and has_result.

    Those received by `end` and still relevant on `start` (received in the range, or
    finished on/after it, or not finished), then every dossier with no usable
    received day (they belong to no period; the report counts them apart).
    """
    found = []
    iso_day = _glob(conn, "d.received_date", _ISO_DAY)
    for where in (
        f"WHERE d.received_date <= :end AND {iso_day}"
        " AND (d.received_date >= :start OR d.finished_date IS NULL OR d.finished_date >= :start)",
        f"WHERE d.received_date IS NULL OR NOT ({iso_day})",
    ):
        names, rows = _tuples(conn, _COVERAGE_SELECT + where, {"start": start, "end": end})
        found.extend(dict(zip(names, row)) for row in rows)
    postgres = is_postgres(conn)
    for dossier in found:
        dossier["has_document"], dossier["has_result"] = bool(dossier["has_document"]), bool(dossier["has_result"])
        if postgres:
            dossier["status"] = _affinity(dossier["status"])
    return found


def insert_dossiers(conn: sqlite3.Connection, dossiers: list[dict]) -> None:
    """Plain bulk insert of registry rows (tests, benchmarks); the registry import tracks changes itself."""
    stamp = now_iso()
    conn.executemany(
        f"INSERT INTO dossiers ({', '.join(DOSSIER_COLUMNS)}, imported_at, updated_at) "
        f"VALUES ({', '.join('?' for _ in DOSSIER_COLUMNS)}, ?, ?)",
        [[dossier.get(column) for column in DOSSIER_COLUMNS] + [stamp, stamp] for dossier in dossiers],
    )


# --- reprocess ---
# A reprocess run is keyed by a hash of its selection, mode and pipeline
# definitions; its items are the documents it selected. An item is done once
# its new output and catalogue rows are committed (one transaction), so a
# rerun of the same command after a kill picks up the items still pending.
REPROCESS_SCHEMA = """
CREATE TABLE IF NOT EXISTS reprocess_runs (
    key TEXT PRIMARY KEY,
    selection TEXT NOT NULL,               -- JSON, for people
    started_at TEXT NOT NULL,
    finished_at TEXT,
    pages_done INTEGER NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0,       -- wall time of OCR work over all sittings
    workers INTEGER
);
CREATE TABLE IF NOT EXISTS reprocess_items (
    run_key TEXT NOT NULL REFERENCES reprocess_runs (key) ON DELETE CASCADE,
    document_id INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    status TEXT NOT NULL,                  -- pending|done|failed|missing
    error TEXT,
    link_changed INTEGER NOT NULL DEFAULT 0,
    finished_at TEXT,
    PRIMARY KEY (run_key, document_id)
);
"""
REPROCESSABLE = ("done", "failed")


def select_for_reprocess(conn: sqlite3.Connection, *, created_from: str | None = None,
                         created_to: str | None = None, dossier: str | None = None,
                         status: str | None = None, older_than: dict[str, str] | None = None,
                         source_glob: str | None = None, first_part_only: bool = False) -> list[dict]:
    """Documents matching every given selector (done or failed ones), oldest first.

    created_from/created_to: ISO UTC bounds on created_at (to is exclusive);
    status: failed | review | unlinked; older_than: {pipeline name: current hash},
    a document matches when its hash differs from its pipeline's (or the
    pipeline is gone); source_glob matches the source or where the original is kept.
    """
    where = [f"status IN ({', '.join('?' for _ in REPROCESSABLE)})"]
    params: list[Any] = list(REPROCESSABLE)
    if created_from:
        where.append("created_at >= ?")
        params.append(created_from)
    if created_to:
        where.append("created_at < ?")
        params.append(created_to)
    if dossier:
        where.append("dossier_code = ?")
        params.append(dossier)
    if status == "failed":
        where.append("status = 'failed'")
    elif status == "review":
        where.append("link_status = 'review'")
    elif status == "unlinked":
        where.append("status = 'done' AND COALESCE(link_status, 'none') = 'none'")
    if older_than is not None:
        cases = " ".join("WHEN ? THEN ?" for _ in older_than)
        differs = "IS DISTINCT FROM" if is_postgres(conn) else "IS NOT"
        where.append(f"pipeline_hash {differs} (CASE pipeline {cases} END)" if older_than else "1=1")
        for name, digest in older_than.items():
            params += [name, digest]
    if source_glob:
        where.append(f"({_glob(conn, 'source', '?')} OR {_glob(conn, 'original', '?')})")
        pattern = glob_regex(source_glob) if is_postgres(conn) else source_glob
        params += [pattern, pattern]
    if first_part_only:
        where.append("part = 0")
    rows = conn.execute(f"SELECT * FROM documents WHERE {' AND '.join(where)} ORDER BY id", params)
    return [_document_row(row) for row in rows]


def open_run(conn: sqlite3.Connection, key: str, selection: dict, document_ids: list[int],
             restart: bool) -> dict:
    """Create or resume the run `key` and add the selected documents as pending items.

    On resume, finished items stay finished, failed and missing ones are tried
    again, and newly matching documents join. restart (--force) forgets the
    run's progress. Returns the run row.
    """
    with transaction(conn):
        if restart:
            conn.execute("DELETE FROM reprocess_runs WHERE key=?", (key,))
        conn.execute(
            "INSERT INTO reprocess_runs (key, selection, started_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO NOTHING",
            (key, json.dumps(selection, ensure_ascii=False, sort_keys=True), now_iso()),
        )
        conn.execute("DELETE FROM reprocess_items WHERE run_key=? AND status IN ('failed', 'missing')", (key,))
        conn.executemany(
            "INSERT INTO reprocess_items (run_key, document_id, status) VALUES (?, ?, 'pending') "
            "ON CONFLICT (run_key, document_id) DO NOTHING",
            [(key, document_id) for document_id in document_ids],
        )
        conn.execute("UPDATE reprocess_runs SET finished_at=NULL WHERE key=?", (key,))
    return dict(conn.execute("SELECT * FROM reprocess_runs WHERE key=?", (key,)).fetchone())


def run_items(conn: sqlite3.Connection, key: str, status: str | None = None) -> list[dict]:
    query = "SELECT * FROM reprocess_items WHERE run_key=?" + (" AND status=?" if status else "")
    rows = conn.execute(query + " ORDER BY document_id", (key, status) if status else (key,))
    return [dict(row) for row in rows]


def finish_item(conn: sqlite3.Connection, key: str, document_id: int, status: str,
                error: str | None = None, link_changed: bool = False) -> None:
    conn.execute(
        "UPDATE reprocess_items SET status=?, error=?, link_changed=?, finished_at=? "
        "WHERE run_key=? AND document_id=?",
        (status, error, int(link_changed), now_iso(), key, document_id),
    )


def save_relinked(conn: sqlite3.Connection, key: str, document_id: int, decided: LinkDecision | None,
                  fields: dict | None, link_changed: bool) -> None:
    """A new link decision and fields from the stored text (none: left as they are) and the
    run item, in one transaction; a manual link stays (set_link)."""
    with transaction(conn):
        if decided is not None:
            update_document(conn, document_id, fields=fields, kind=(fields or {}).get("kind"))
            set_link(conn, document_id, decided)
            index_document(conn, document_id)  # search index hook: the fields changed even if the link did not
        finish_item(conn, key, document_id, "done", link_changed=link_changed)


def add_run_time(conn: sqlite3.Connection, key: str, pages: int, seconds: float, workers: int,
                 finished: bool) -> None:
    conn.execute(
        "UPDATE reprocess_runs SET pages_done = pages_done + ?, seconds = seconds + ?, workers=?, "
        "finished_at=? WHERE key=?",
        (pages, seconds, workers, now_iso() if finished else None, key),
    )


def seconds_per_page_per_worker(conn: sqlite3.Connection, recent: int = 5) -> float | None:
    """From the most recent runs that OCRed pages; None when there are none yet."""
    row = conn.execute(
        "SELECT SUM(seconds * workers) AS busy, SUM(pages_done) AS pages FROM ("
        "SELECT seconds, workers, pages_done FROM reprocess_runs WHERE pages_done > 0 AND workers > 0 "
        "ORDER BY started_at DESC LIMIT ?) AS recent", (recent,),
    ).fetchone()
    return row["busy"] / row["pages"] if row["pages"] else None


# --- watch (intake service) ---
# What happened to each claimed file that did not simply become a document:
# a byte-identical repeat set aside, or a file quarantined. `claim` is the
# watcher's claim id, so a step redone after a crash notes an event only once.
WATCH_SCHEMA = """
CREATE TABLE IF NOT EXISTS intake_events (
    id INTEGER PRIMARY KEY,
    claim TEXT NOT NULL,
    kind TEXT NOT NULL,                    -- duplicate|quarantined
    sha256 TEXT,
    source TEXT NOT NULL,                  -- where the file was dropped
    kept TEXT,                             -- where the file is now
    officer TEXT,
    error TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (claim, kind)
);
CREATE INDEX IF NOT EXISTS intake_events_created ON intake_events (created_at);
"""


def note_intake(conn: sqlite3.Connection, claim: str, kind: str, source: str, kept: str | None,
                sha256: str | None = None, officer: str | None = None, error: str | None = None) -> bool:
    """Record an intake event once per claim; whether it was new."""
    cursor = conn.execute(
        "INSERT INTO intake_events (claim, kind, sha256, source, kept, officer, error, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (claim, kind) DO NOTHING",
        (claim, kind, sha256, source, kept, officer, error, now_iso()),
    )
    return cursor.rowcount == 1


def intake_events(conn: sqlite3.Connection, kind: str | None = None) -> list[dict]:
    query = "SELECT * FROM intake_events" + (" WHERE kind=?" if kind else "") + " ORDER BY id"
    return [dict(row) for row in conn.execute(query, (kind,) if kind else ())]


def watch_counts(conn: sqlite3.Connection, since: str) -> dict:
    """Counts for `digitize status` since an ISO UTC time (the start of today)."""

    def count(query: str, *params: Any) -> int:
        return int(conn.execute(query, params).fetchone()[0])

    last = conn.execute(
        "SELECT source, error, created_at FROM intake_events WHERE kind='quarantined' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    unsigned = conn.execute("SELECT output, signature_reason AS reason, updated_at FROM documents "
                            "WHERE signature_status='pending' ORDER BY updated_at DESC LIMIT 1").fetchone()
    return {
        "done_today": count("SELECT COUNT(*) FROM documents WHERE status IN ('done', 'skipped') "
                            "AND output IS NOT NULL AND updated_at >= ?", since),
        "failed_today": count("SELECT COUNT(*) FROM intake_events WHERE kind='quarantined' AND created_at >= ?",
                              since),
        "duplicates_today": count("SELECT COUNT(*) FROM intake_events WHERE kind='duplicate' AND created_at >= ?",
                                  since),
        "in_review": count(f"SELECT COUNT(*) FROM documents WHERE {_in_review(conn)}"),
        "last_error": dict(last) if last else None,
        "unsigned": count("SELECT COUNT(*) FROM documents WHERE signature_status='pending'"),
        "last_unsigned": dict(unsigned) if unsigned else None,
    }


def registry_stamp(conn: sqlite3.Connection) -> list:
    """Changes whenever an import adds or changes dossiers (relink runs are keyed by it)."""
    row = conn.execute("SELECT COUNT(*) AS n, MAX(updated_at) AS latest, "
                       "(SELECT MAX(id) FROM dossier_changes) AS change FROM dossiers").fetchone()
    return [row["n"], row["latest"], row["change"]]


# --- registry and linking (issue 3) ---
def _same(old: Any, new: Any) -> bool:
    """Registry values compare as text: SQLite may hand back 10 for "10"."""
    return (None if old is None else str(old)) == (None if new is None else str(new))


def upsert_dossiers(conn: sqlite3.Connection, rows: list[dict]) -> dict:
    """Insert or update registry rows by code, recording every changed field in
    dossier_changes, all in one transaction. {"added", "updated", "unchanged"}
    counts and the lists of added and updated codes."""
    added, updated, unchanged = [], [], 0
    stamp = now_iso()
    with transaction(conn):
        for row in rows:
            values = [row["code"], *(row.get(column) for column in DOSSIER_COLUMNS[1:])]
            # Two imports at once: the second waits for the first's new row, then sees it as old.
            if conn.execute(
                    f"INSERT INTO dossiers ({', '.join(DOSSIER_COLUMNS)}, imported_at, updated_at) "
                    f"VALUES ({', '.join('?' for _ in DOSSIER_COLUMNS)}, ?, ?) ON CONFLICT (code) DO NOTHING",
                    [*values, stamp, stamp]).rowcount == 1:
                added.append(row["code"])
                continue
            old = conn.execute("SELECT * FROM dossiers WHERE code=?" + _for_update(conn), (row["code"],)).fetchone()
            changed = [c for c in DOSSIER_COLUMNS[1:] if not _same(old[c], row.get(c))]
            if not changed:
                unchanged += 1
                continue
            conn.execute(f"UPDATE dossiers SET {', '.join(f'{c}=?' for c in changed)}, updated_at=? WHERE code=?",
                         [*(row.get(c) for c in changed), stamp, row["code"]])
            conn.executemany(
                "INSERT INTO dossier_changes (code, field, old_value, new_value, changed_at) VALUES (?, ?, ?, ?, ?)",
                [(row["code"], c, None if old[c] is None else str(old[c]),
                  None if row.get(c) is None else str(row[c]), stamp) for c in changed])
            updated.append(row["code"])
    return {"added": len(added), "updated": len(updated), "unchanged": unchanged,
            "added_codes": added, "updated_codes": updated}


def _dossier_row(conn: sqlite3.Connection, row: Any) -> dict:
    dossier = dict(row)
    if is_postgres(conn):
        dossier["status"] = _affinity(dossier["status"])
    return dossier


def list_dossiers(conn: sqlite3.Connection, start: str | None = None, end: str | None = None) -> list[dict]:
    """Registry rows received in [start, end] (ISO days, inclusive), all when no bounds."""
    bounds = [clause for clause, given in (("received_date >= :start", start), ("received_date <= :end", end))
              if given is not None]
    rows = conn.execute(
        "SELECT * FROM dossiers" + (" WHERE " + " AND ".join(bounds) if bounds else "") +
        " ORDER BY received_date NULLS FIRST, code", {"start": start, "end": end})
    return [_dossier_row(conn, row) for row in rows]


def get_dossier(conn: sqlite3.Connection, code: str) -> dict | None:
    row = conn.execute("SELECT * FROM dossiers WHERE code=?", (code,)).fetchone()
    return _dossier_row(conn, row) if row else None


def dossier_changes(conn: sqlite3.Connection, code: str) -> list[dict]:
    rows = conn.execute("SELECT * FROM dossier_changes WHERE code=? ORDER BY id", (code,))
    return [dict(row) for row in rows]


# In review: a link to decide, or a page below the 200 dpi the rules want (rescan it).
_IN_REVIEW = {
    "sqlite": "(link_status='review' OR EXISTS (SELECT 1 FROM json_each(documents.warnings) "
              "WHERE json_extract(value, '$.rule')='resolution'))",
    "postgresql": "(link_status='review' OR EXISTS (SELECT 1 FROM json_array_elements(documents.warnings::json) "
                  "AS warning WHERE warning->>'rule'='resolution'))",
}


def _in_review(conn: sqlite3.Connection) -> str:
    return _IN_REVIEW["postgresql" if is_postgres(conn) else "sqlite"]


def documents_in_review(conn: sqlite3.Connection) -> list[dict]:
    rows = conn.execute(f"SELECT * FROM documents WHERE {_in_review(conn)} ORDER BY id")
    return [_document_row(row) for row in rows]


def set_signature(conn: sqlite3.Connection, output: str, status: str, reason: str | None) -> None:
    """Record what signing did to the copy at `output` (digitize sign, after the copy was made)."""
    with transaction(conn):
        conn.execute("UPDATE documents SET signature_status=?, signature_reason=?, updated_at=? WHERE output=?",
                     (status, reason, now_iso(), output))


def documents_to_relink(conn: sqlite3.Connection) -> list[dict]:
    """Processed documents without a link that a registry import may now link:
    in review or unlinked, never decided by hand."""
    rows = conn.execute(
        "SELECT * FROM documents WHERE status='done' AND COALESCE(link_status, 'none') IN ('review', 'none') "
        "AND COALESCE(link_method, '') != 'manual' ORDER BY id")
    return [_document_row(row) for row in rows]


def set_link(conn: sqlite3.Connection, document_id: int, link: LinkDecision, manual: bool = False) -> bool:
    """Write a link decision onto a document. An automatic decision never replaces
    a manual one: False then, and nothing is written."""
    row = conn.execute("SELECT link_method FROM documents WHERE id=?" + _for_update(conn), (document_id,)).fetchone()
    if row is None or (row["link_method"] == "manual" and not manual):
        return False
    update_document(conn, document_id, dossier_code=link.dossier, link_status=link.status,
                    link_method="manual" if manual else link.method,
                    link_confidence=link.confidence, candidates=list(link.candidates) or None)
    index_document(conn, document_id)  # search index hook: the dossier code is searchable
    return True


# ==== web (issue 14): accounts, sessions, login throttling, audit log, search index ====
# One migration (WEB_MIGRATION, version 2): the tables below, then the search index
# filled from every document already catalogued.
#
# Search index hook: `search_index` holds, per document (rowid = documents.id), an
# accent-folded copy of its page text (`text`) and of its dossier code, source path,
# fields (never the CCCD) and registry applicant/procedure (`meta`). FTS5's
# remove_diacritics does not fold đ/Đ, so the copy is folded by the SQL function
# fold() (vntext.fold_keep_length, registered by connect), which keeps one character
# per character. index_document() rewrites a document's entry and is called wherever
# a document's text, fields or link is written: record_result, save_relinked and
# set_link. Any new writer of pages, fields or links must call it too.
WEB_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,                    -- officer|supervisor|admin
    password_hash TEXT NOT NULL,           -- Argon2id (argon2-cffi)
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,           -- sha256 of the cookie value (the value itself is never stored)
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT PRIMARY KEY,                  -- "user:NAME" or "ip:ADDRESS"
    failures INTEGER NOT NULL,
    first_at REAL NOT NULL,                -- epoch seconds of the first failure in the window
    locked_until REAL
);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,                   -- user name ("cli:<os user>" from the command line)
    action TEXT NOT NULL,                  -- link|unlink|registry_import|user_add|user_disable|user_passwd
    document_id INTEGER,
    dossier TEXT,
    detail TEXT                            -- JSON
);
CREATE INDEX IF NOT EXISTS audit_log_document ON audit_log (document_id);
CREATE VIRTUAL TABLE IF NOT EXISTS search_index USING fts5 (
    text, meta, tokenize = 'unicode61 remove_diacritics 2'
)
"""
# What the index holds for each document. Page order does not matter to the index
# (snippets are cut from document_text, in order).
_INDEX_ROWS = """
INSERT INTO search_index (rowid, text, meta)
SELECT d.id,
       fold((SELECT group_concat(p.text, char(10)) FROM pages p WHERE p.document_id = d.id)),
       fold(COALESCE(d.dossier_code, '') || ' ' || d.source || ' ' ||
            COALESCE((SELECT group_concat(f.value, ' ') FROM json_each(d.fields) f WHERE f.key != 'cccd'), '') || ' ' ||
            COALESCE(ds.applicant, '') || ' ' || COALESCE(ds.procedure_code, '') || ' ' ||
            COALESCE(ds.procedure_name, ''))
FROM documents d LEFT JOIN dossiers ds ON ds.code = d.dossier_code
"""
WEB_MIGRATION = WEB_SCHEMA + ";\nDELETE FROM search_index;\n" + _INDEX_ROWS  # idempotent, like version 1
# PostgreSQL has no FTS5: the index is a table of the same folded copies with a tsvector over
# them ('simple': no stemming, as unicode61), and fold() is a SQL function made from the same
# table as vntext.fold_keep_length (one character for one character).
_FOLDED_FROM = "".join(chr(code) for code in range(0x2000) if fold_keep_length(chr(code)) != chr(code))
_INDEX_ROWS_POSTGRES = (_INDEX_ROWS
                        .replace("group_concat(p.text, char(10))", "string_agg(p.text, chr(10) ORDER BY p.page_no)")
                        .replace("SELECT group_concat(f.value, ' ') FROM json_each(d.fields) f",
                                 "SELECT string_agg(f.value, ' ') FROM json_each_text(d.fields::json) f"))
WEB_MIGRATION_POSTGRES = _postgres_ddl(WEB_SCHEMA.split("CREATE VIRTUAL TABLE")[0]) + f"""
CREATE OR REPLACE FUNCTION fold(text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $fold$ SELECT translate(COALESCE($1, ''), '{_FOLDED_FROM}', '{fold_keep_length(_FOLDED_FROM)}') $fold$;
CREATE TABLE IF NOT EXISTS search_index (
    rowid INTEGER PRIMARY KEY,
    text TEXT,
    meta TEXT,
    -- words only, split as FTS5's unicode61 splits them (the parser would keep a path or a code whole)
    terms tsvector GENERATED ALWAYS AS
        (setweight(to_tsvector('simple', regexp_replace(COALESCE(meta, ''), '[^[:alnum:]]+', ' ', 'g')), 'A') ||
         to_tsvector('simple', regexp_replace(COALESCE(text, ''), '[^[:alnum:]]+', ' ', 'g'))) STORED
);
CREATE INDEX IF NOT EXISTS search_index_terms ON search_index USING gin (terms);
DELETE FROM search_index;
""" + _INDEX_ROWS_POSTGRES
USER_COLUMNS = "id, name, role, disabled, created_at, updated_at"


def _fold(text: str | None) -> str:
    return fold_keep_length(nfc(text)) if text else ""


def document_text(conn: sqlite3.Connection, document_id: int) -> str:
    """The document's page text in page order, NFC, pages apart by a blank line (for snippets)."""
    rows = conn.execute("SELECT text FROM pages WHERE document_id=? ORDER BY page_no", (document_id,))
    return nfc("\n\n".join(row["text"] or "" for row in rows))


def index_document(conn: sqlite3.Connection, document_id: int) -> None:
    """Rewrite the document's entry in the search index (see WEB_SCHEMA)."""
    conn.execute("DELETE FROM search_index WHERE rowid=?", (document_id,))
    conn.execute((_INDEX_ROWS_POSTGRES if is_postgres(conn) else _INDEX_ROWS) + " WHERE d.id = ?", (document_id,))


def _tsquery(match: str) -> str:
    """search.fts_query's FTS5 expression ("w1" "w2"*: every word, the last as a prefix) as a
    PostgreSQL tsquery text."""
    words = re.findall(r'"((?:[^"]|"")*)"(\*?)', match)
    return " & ".join("'" + word.replace('""', '"').replace("'", "''").replace("\\", "\\\\") + "'"
                      + (":*" if star else "") for word, star in words)


def _json_field(conn: sqlite3.Connection, column: str, key: str) -> str:
    return f"({column}::json->>'{key}')" if is_postgres(conn) else f"json_extract({column}, '$.{key}')"


_SEARCH_SELECT = """
SELECT doc.id, doc.source, doc.output, doc.kind, doc.status, doc.link_status, doc.link_method,
       doc.dossier_code, doc.fields, doc.page_count, doc.officer, doc.created_at,
       ds.applicant AS dossier_applicant, ds.procedure_code AS dossier_procedure_code,
       ds.procedure_name AS dossier_procedure_name, ds.received_date AS dossier_received_date,
       {rank} AS rank
FROM documents doc LEFT JOIN dossiers ds ON ds.code = doc.dossier_code
"""


def search_documents(conn: sqlite3.Connection, *, match: str | None = None, dossier: str | None = None,
                     cccd: str | None = None, start: str | None = None, end: str | None = None,
                     procedure: str | None = None, status: str | None = None, limit: int = 50) -> list[dict]:
    """Documents found by an FTS5 `match` expression over the folded index, an exact dossier
    code or an exact CCCD (document fields or the linked dossier's), best first.

    Filters: start/end (ISO days) on the dossier's received day, else the day the
    document was catalogued; procedure (code); status: linked | review | none | failed.
    """
    where, params = [], []
    if match and is_postgres(conn):
        query = _SEARCH_SELECT.format(rank="-ts_rank(search_index.terms, to_tsquery('simple', ?))") + \
            "JOIN search_index ON search_index.rowid = doc.id "
        where.append("search_index.terms @@ to_tsquery('simple', ?)")
        params += [_tsquery(match)] * 2
    elif match:
        query = _SEARCH_SELECT.format(rank="bm25(search_index, 1.0, 4.0)") + \
            "JOIN search_index ON search_index.rowid = doc.id "
        where.append("search_index MATCH ?")
        params.append(match)
    else:
        query = _SEARCH_SELECT.format(rank="0")
    if dossier:
        where.append("doc.dossier_code = ?")
        params.append(dossier)
    if cccd:
        where.append(f"({_json_field(conn, 'doc.fields', 'cccd')} = ? OR ds.cccd = ?)")
        params += [cccd, cccd]
    if start and end:
        where.append("COALESCE(ds.received_date, substr(doc.created_at, 1, 10)) BETWEEN ? AND ?")
        params += [start, end]
    if procedure:
        where.append(f"(ds.procedure_code = ? OR {_json_field(conn, 'doc.fields', 'procedure_code')} = ?)")
        params += [procedure, procedure]
    if status == "failed":
        where.append("doc.status = 'failed'")
    elif status in ("linked", "review"):
        where.append("doc.link_status = ?")
        params.append(status)
    elif status == "none":
        where.append("doc.status = 'done' AND COALESCE(doc.link_status, 'none') = 'none'")
    if not where:
        return []
    rows = conn.execute(query + "WHERE " + " AND ".join(where) + " ORDER BY rank, doc.id DESC LIMIT ?",
                        [*params, limit])
    return [_document_row(row) for row in rows]


def procedures(conn: sqlite3.Connection) -> list[dict]:
    """Procedure codes and names known to the registry, for filters."""
    rows = conn.execute("SELECT procedure_code AS code, MAX(procedure_name) AS name FROM dossiers "
                        "WHERE procedure_code IS NOT NULL GROUP BY procedure_code ORDER BY procedure_code")
    return [dict(row) for row in rows]


def documents_of_dossier(conn: sqlite3.Connection, code: str) -> list[dict]:
    rows = conn.execute("SELECT * FROM documents WHERE dossier_code=? ORDER BY id", (code,))
    return [_document_row(row) for row in rows]


def recent_intake_events(conn: sqlite3.Connection, kind: str, limit: int = 10) -> list[dict]:
    rows = conn.execute("SELECT * FROM intake_events WHERE kind=? ORDER BY id DESC LIMIT ?", (kind, limit))
    return [dict(row) for row in rows]


# users and sessions
def add_user(conn: sqlite3.Connection, name: str, role: str, password_hash: str) -> bool:
    """False when the name is taken."""
    stamp = now_iso()
    cursor = conn.execute(
        "INSERT INTO users (name, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (name) DO NOTHING", (name, role, password_hash, stamp, stamp))
    return cursor.rowcount == 1


def get_user(conn: sqlite3.Connection, name: str, with_hash: bool = False) -> dict | None:
    columns = USER_COLUMNS + (", password_hash" if with_hash else "")
    row = conn.execute(f"SELECT {columns} FROM users WHERE name=?", (name,)).fetchone()
    return dict(row) if row else None


def list_users(conn: sqlite3.Connection) -> list[dict]:
    return [dict(row) for row in conn.execute(f"SELECT {USER_COLUMNS} FROM users ORDER BY name")]


def update_user(conn: sqlite3.Connection, name: str, *, disabled: bool | None = None,
                password_hash: str | None = None) -> bool:
    """Disable a user or set a password; either ends every session of theirs. False: no such user."""
    with transaction(conn):
        row = conn.execute("SELECT id FROM users WHERE name=?", (name,)).fetchone()
        if row is None:
            return False
        if disabled is not None:
            conn.execute("UPDATE users SET disabled=?, updated_at=? WHERE id=?", (int(disabled), now_iso(), row["id"]))
        if password_hash is not None:
            conn.execute("UPDATE users SET password_hash=?, updated_at=? WHERE id=?",
                         (password_hash, now_iso(), row["id"]))
        conn.execute("DELETE FROM sessions WHERE user_id=?", (row["id"],))
    return True


def create_session(conn: sqlite3.Connection, token_hash: str, user_id: int, csrf: str, expires_at: str) -> None:
    conn.execute("DELETE FROM sessions WHERE expires_at < ?", (now_iso(),))
    conn.execute("INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                 (token_hash, user_id, csrf, now_iso(), expires_at))


def session_user(conn: sqlite3.Connection, token_hash: str) -> dict | None:
    """The live session's user (name, role, csrf, expires_at); None when expired, unknown or disabled."""
    row = conn.execute(
        "SELECT u.id, u.name, u.role, s.csrf, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.token_hash=? AND s.expires_at > ? AND u.disabled = 0", (token_hash, now_iso())).fetchone()
    return dict(row) if row else None


def delete_session(conn: sqlite3.Connection, token_hash: str) -> None:
    conn.execute("DELETE FROM sessions WHERE token_hash=?", (token_hash,))


def login_failures(conn: sqlite3.Connection, key: str) -> dict | None:
    row = conn.execute("SELECT * FROM login_failures WHERE key=?", (key,)).fetchone()
    return dict(row) if row else None


def put_login_failures(conn: sqlite3.Connection, key: str, failures: int, first_at: float,
                       locked_until: float | None) -> None:
    conn.execute("INSERT INTO login_failures (key, failures, first_at, locked_until) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT (key) DO UPDATE SET failures=excluded.failures, first_at=excluded.first_at, "
                 "locked_until=excluded.locked_until", (key, failures, first_at, locked_until))


def clear_login_failures(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM login_failures WHERE key=?", (key,))


# audit log
def add_audit(conn: sqlite3.Connection, actor: str, action: str, document_id: int | None = None,
              dossier: str | None = None, detail: dict | None = None) -> None:
    conn.execute("INSERT INTO audit_log (at, actor, action, document_id, dossier, detail) VALUES (?, ?, ?, ?, ?, ?)",
                 (now_iso(), actor, action, document_id, dossier,
                  json.dumps(detail, ensure_ascii=False) if detail is not None else None))


def audit_entries(conn: sqlite3.Connection, document_id: int | None = None, limit: int = 200) -> list[dict]:
    """Newest first; one document's entries when document_id is given."""
    if document_id is None:
        rows = conn.execute("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", (limit,))
    else:
        rows = conn.execute("SELECT * FROM audit_log WHERE document_id=? ORDER BY id DESC LIMIT ?",
                            (document_id, limit))
    return [{**dict(row), "detail": json.loads(row["detail"]) if row["detail"] else None} for row in rows]


# Catalogues made before versioning have every table of version 1 already (IF NOT EXISTS).
MIGRATIONS = (
    DOCUMENTS_SCHEMA + REPROCESS_SCHEMA + WATCH_SCHEMA,
    # 2: signed copies and the format rules (issue 13).
    "ALTER TABLE documents ADD COLUMN signature_status TEXT; "
    "ALTER TABLE documents ADD COLUMN signature_reason TEXT; "
    "ALTER TABLE documents ADD COLUMN warnings TEXT",
    {"sqlite": WEB_MIGRATION, "postgresql": WEB_MIGRATION_POSTGRES},  # 3: accounts, sessions, login
    # throttling, audit log, search index (issue 14)
)
