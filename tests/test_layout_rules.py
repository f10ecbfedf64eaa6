"""The archive layout's names, exactly: the watcher's folders (README table), the collision
numbering, and safe names at their edges (suffix of 8 and 9 characters, dotted device names,
tails longer than the room left)."""
from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path, PurePath

from digitize import layout

A = "000.00.06.H56-231027-0361"
SHA = "ab" * 32


def test_the_watchers_folders_exactly(tmp_path):
    archive, quarantine = tmp_path / "archive", tmp_path / "quarantine"
    taken = datetime(2024, 12, 31, 23, 59)
    assert layout.original_place(archive, taken, PurePath("Nguyễn Văn An/scan 1.jpg"), SHA) == \
        archive / "originals" / "2024" / "12" / "Nguyễn Văn An" / "scan 1.jpg"
    assert layout.original_place(archive, datetime(2025, 1, 1), PurePath("may:quet?/con/a.jpg"), SHA) == \
        archive / "originals" / "2025" / "01" / "may_quet_" / "_con" / "a.jpg"  # a device name too
    assert layout.duplicate_place(archive, PurePath("b/same again.jpg"), SHA) == \
        archive / "duplicates" / "b" / "same again.jpg"
    assert layout.quarantine_place(quarantine, PurePath("Cán bộ Ánh/mật khẩu.pdf"), None) == \
        quarantine / "Cán bộ Ánh" / "mật khẩu.pdf"
    assert layout.quarantine_place(quarantine, PurePath("top.pdf"), SHA) == quarantine / "top.pdf"
    assert layout.month_folder(archive, datetime(2024, 1, 5)) == archive / "2024" / "01"
    assert layout.unfiled_folder(archive) == archive / "unfiled"
    assert layout.sidecar(archive / "2024" / "01" / "scan.v2.pdf") == archive / "2024" / "01" / "scan.v2.txt"
    assert layout.note_beside(quarantine / "a.pdf") == quarantine / "a.pdf.error.txt"
    # A name holding another source's file: this source's name gets its sha256, in every place.
    for place in (lambda: layout.original_place(archive, taken, PurePath("An/x.jpg"), SHA),
                  lambda: layout.duplicate_place(archive, PurePath("An/x.jpg"), SHA),
                  lambda: layout.quarantine_place(quarantine, PurePath("An/x.jpg"), SHA)):
        first = place()
        first.parent.mkdir(parents=True, exist_ok=True)
        first.write_bytes(b"another source")
        assert place() == first.with_name(f"x-{SHA[:8]}.jpg")


def test_dossier_folders_by_received_date_then_the_code_then_undated():
    archive = Path("/srv/archive")
    assert layout.quarter_folder(archive, A, "2024-10-01 08:30:00") == archive / "2024" / "Q4" / A
    assert layout.quarter_folder(archive, A, "2024-09-30") == archive / "2024" / "Q3" / A
    assert layout.quarter_folder(archive, "H56.14-241301-0001", None) == archive / "undated" / "H56.14-241301-0001"
    assert layout.quarter_folder(archive, "giấy tờ: khác", None) == archive / "undated" / "giấy tờ_ khác"
    assert layout.is_dossier_folder(archive / "2024" / "Q4" / A, archive)
    assert layout.is_dossier_folder(archive / "undated" / A, archive)
    for other in (archive / "2024" / "12" / "scan", archive / "2024" / "Q5" / A, archive / "2024" / "q4" / A,
                  archive / "2024" / "Q4", archive / "Q4", archive, Path("/elsewhere/2024/Q4") / A):
        assert not layout.is_dossier_folder(other, archive), other


def test_names_without_a_source_are_numbered_from_2(tmp_path):
    first = layout.place(tmp_path, "x.pdf", None)
    assert first == tmp_path / "x.pdf"
    first.write_bytes(b"one")
    assert layout.place(tmp_path, "x.pdf", None) == tmp_path / "x (2).pdf"
    (tmp_path / "x (2).pdf").write_bytes(b"two")
    assert layout.place(tmp_path, "x.pdf", None) == tmp_path / "x (3).pdf"


def test_a_link_is_never_taken_for_ours(tmp_path):
    data = b"same bytes"
    (tmp_path / "real.bin").write_bytes(data)
    os.symlink(tmp_path / "real.bin", tmp_path / "copy.bin")
    digest = hashlib.sha256(data).hexdigest()
    assert layout.place(tmp_path, "copy.bin", digest) == tmp_path / f"copy-{digest[:8]}.bin"


def test_a_file_on_the_way_is_passed_with_the_next_free_number(tmp_path, monkeypatch):
    (tmp_path / "scans").write_bytes(b"a file")
    assert layout.place(tmp_path / "scans", "a.jpg", SHA) == tmp_path / "scans (2)" / "a.jpg"
    (tmp_path / "scans (2)").write_bytes(b"another file")
    assert layout.place(tmp_path / "scans" / "x", "a.jpg", SHA) == tmp_path / "scans (3)" / "x" / "a.jpg"
    monkeypatch.chdir(tmp_path)
    assert layout.place(Path("scans") / "y", "b.jpg", SHA) == Path("scans (3)") / "y" / "b.jpg"


def test_safe_names_at_their_edges():
    assert layout.safe_name(".hidden.pdf") == ".hidden.pdf"
    assert layout.safe_name("x.pdf.", "-t") == "x-t.pdf"
    assert layout.safe_name("a.b.pdf", "-t") == "a.b-t.pdf"
    assert layout.safe_name(".pdf", "-t") == ".pdf-t"
    assert layout.safe_name("a.abcdefgh", "-t") == "a-t.abcdefgh"          # an 8-character suffix is a suffix
    assert layout.safe_name("a.abcdefghi", "-t") == "a.abcdefghi-t"        # a 9-character one is not
    assert layout.safe_name("con.tar.gz") == "_con.tar.gz" and layout.safe_name("Lpt9") == "_Lpt9"
    assert layout.safe_name("console.pdf") == "console.pdf"
    assert layout.safe_name("..") == "_" and layout.safe_name("x\x7f.pdf") == "x_.pdf"
    assert layout.safe_name("..pdf") == "_.pdf"
    assert layout.safe_name("bản X") == "bản X" and layout.safe_name("Bản X.pdf", "-2") == "Bản X-2.pdf"
    # A tail longer than the room left keeps one character of the name, by characters and by bytes.
    assert layout.safe_name("abc.pdf", "-" + "f" * 130) == "a-" + "f" * 130 + ".pdf"
    assert layout.safe_name("abc.pdf", "Ữ" * 70) == "a" + "Ữ" * 70 + ".pdf"
    assert layout.safe_name("ab. .pdf", "Ữ" * 10) == "ab" + "Ữ" * 10 + ".pdf"
