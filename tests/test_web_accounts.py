"""Accounts from the command line, the audit of manual decisions, and the search index as a schema step."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

from digitize import store
from digitize.vntext import fold_keep_length
from digitize.web.search import fts_query, search, snippet
from tests.conftest import DIGITIZE, PROJECT_ROOT, run_digitize


def user_command(home: Path, *args: str, password: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*DIGITIZE, "user", *args], input=password, capture_output=True, text=True,
                          cwd=PROJECT_ROOT, env={**os.environ, "DIGITIZE_HOME": str(home)}, timeout=60)


def test_user_commands(home):
    added = user_command(home, "add", "Trần Thị Bình", "--role", "officer", "--password-stdin",
                         password="mật-khẩu-dài\n")
    assert added.returncode == 0, added.stderr
    assert user_command(home, "add", "Trần Thị Bình", "--role", "admin", "--password-stdin",
                        password="another-one\n").returncode == 2
    short = user_command(home, "add", "x", "--role", "officer", "--password-stdin", password="short\n")
    assert short.returncode == 2 and "8" in short.stderr
    assert user_command(home, "add", "y", "--role", "root", "--password-stdin", password="long-enough\n").returncode == 2
    listed = [json.loads(line) for line in user_command(home, "list", "--json").stdout.splitlines()]
    assert [(u["name"], u["role"], u["disabled"]) for u in listed] == [("Trần Thị Bình", "officer", 0)]
    assert "password" not in json.dumps(listed)
    conn = store.connect(home / "catalogue.sqlite")
    assert store.get_user(conn, "Trần Thị Bình", with_hash=True)["password_hash"].startswith("$argon2id$")

    from digitize import accounts
    assert accounts.verify(conn, "Trần Thị Bình", "mật-khẩu-dài")["role"] == "officer"
    assert accounts.verify(conn, "Trần Thị Bình", "wrong") is None
    assert user_command(home, "passwd", "Trần Thị Bình", "--password-stdin", password="new-password\n").returncode == 0
    assert accounts.verify(conn, "Trần Thị Bình", "mật-khẩu-dài") is None
    assert accounts.verify(conn, "Trần Thị Bình", "new-password") is not None
    assert user_command(home, "disable", "Trần Thị Bình").returncode == 0
    assert accounts.verify(conn, "Trần Thị Bình", "new-password") is None
    assert user_command(home, "disable", "nobody").returncode == 2
    actions = [e["action"] for e in store.audit_entries(conn)]
    assert actions == ["user_disable", "user_passwd", "user_add"]
    assert all(e["actor"].startswith("cli") for e in store.audit_entries(conn))


def test_link_command_is_audited(home):
    conn = store.connect(home / "catalogue.sqlite")
    store.insert_dossiers(conn, [{"code": "000.00.06.H56-241003-0012", "received_date": "2024-10-03"}])
    document_id = store.save_document(conn, {"sha256": "a" * 64, "source": "/x/a.jpg", "status": "done",
                                             "link_status": "review"})
    done = run_digitize(["link", str(document_id), "000.00.06.H56-241003-0012"], home)
    assert done.returncode == 0, done.stderr
    assert store.get_document(conn, document_id)["link_method"] == "manual"
    assert run_digitize(["unlink", str(document_id)], home).returncode == 0
    entries = store.audit_entries(conn, document_id=document_id)
    assert [(e["action"], e["dossier"]) for e in entries] == [("unlink", "000.00.06.H56-241003-0012"),
                                                              ("link", "000.00.06.H56-241003-0012")]
    assert run_digitize(["link", str(document_id), "not-a-code"], home).returncode == 2


def test_search_index_is_filled_once_for_an_older_catalogue(tmp_path):
    """A catalogue at schema version 1 (before the web migration) gets its index at the first open."""
    path = tmp_path / "catalogue.sqlite"
    old = sqlite3.connect(path)
    old.executescript(store.MIGRATIONS[0])
    old.execute("PRAGMA user_version = 1")
    old.execute("INSERT INTO documents (id, sha256, source, status, fields, created_at, updated_at) VALUES "
                "(1, 'x', '/in/don.jpg', 'done', '{\"applicant\": \"Đặng Văn Đức\"}', '2024-10-01', '2024-10-01')")
    old.execute("INSERT INTO pages (document_id, page_no, text) VALUES (1, 1, 'TỜ KHAI ĐĂNG KÝ KHAI SINH')")
    old.commit()
    old.close()
    conn = store.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(store.MIGRATIONS)
    assert [r["id"] for r in store.search_documents(conn, match=fts_query(["dang", "ky"]))] == [1]
    assert [r["id"] for r in store.search_documents(conn, match=fts_query(["duc"]))] == [1]  # from the fields
    found = search(conn, "đăng KÝ")
    assert found["mode"] == "text" and [piece for piece, marked in found["results"][0]["snippet"] if marked] == \
        ["ĐĂNG", "KÝ"]
    assert search(conn, "070166805643")["mode"] == "cccd"
    assert search(conn, "000.00.06.H56-241003-0012")["mode"] == "dossier"


def test_snippet_highlights_the_original_text_where_the_folded_text_matched():
    text = "Căn cứ đề nghị của Bà Nguyễn Thu Mai; Điều 1. Chấp thuận"
    assert len(fold_keep_length(text)) == len(text)
    pieces = snippet(text, ["nguyen", "thu", "ma"])
    assert [p for p, marked in pieces if marked] == ["Nguyễn", "Thu", "Ma"]
    assert "".join(p for p, _ in pieces) == text
