"""The archive layout: one collision rule, names that fit 255 bytes, files and folders that never block each other."""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path, PurePath

from digitize import layout
from digitize.files import write_atomic, write_text_atomic
from tools import synth

from .conftest import run_digitize

A = "000.00.06.H56-231027-0361"


def test_dossier_and_month_folders():
    assert layout.quarter_folder(Path("/archive"), A, "2023-10-27") == Path("/archive/2023/Q4") / A
    assert layout.quarter_folder(Path("/archive"), A, date(2024, 1, 1)) == Path("/archive/2024/Q1") / A
    assert layout.quarter_folder(Path("/archive"), A, "2024-12-31") == Path("/archive/2024/Q4") / A
    # No received date: the date inside the code; no date at all: undated.
    assert layout.quarter_folder(Path("/a"), "H56.14-240223-0001", None) == Path("/a/2024/Q1/H56.14-240223-0001")
    assert layout.quarter_folder(Path("/a"), "H56.14-241231-0001", None) == Path("/a/2024/Q4/H56.14-241231-0001")
    assert layout.month_folder(Path("/a"), datetime(2024, 12, 1)) == Path("/a/2024/12")
    assert layout.part_name("feed.tif", 0) == "feed.pdf" and layout.part_name("feed.tif", 2) == "feed-part3.pdf"


def test_safe_names_fit_windows_and_255_bytes():
    assert layout.safe_name("Tờ khai: bản 1?.pdf") == "Tờ khai_ bản 1_.pdf"
    assert layout.safe_name("CON.pdf") == "_CON.pdf" and layout.safe_name("a. ") == "a"
    assert layout.safe_name("") == "_" and layout.safe_name("a\nb\x1b.pdf") == "a_b_.pdf"
    assert len(layout.safe_name("x" * 300 + ".pdf")) == layout.NAME_CHARS
    long = "Ữ" * 78 + ".jpg"  # 238 bytes: legal on disk, too long once a suffix is added
    for tail in ("", "-" + "f" * 64):
        name = layout.safe_name(long, tail)
        assert len(name.encode()) <= layout.NAME_BYTES and name.endswith(tail + ".jpg")
    # NFD (macOS, Word) comes out NFC.
    assert layout.safe_name("Nguye\u0302\u0303n.pdf") == "Nguyễn.pdf"


def test_one_collision_rule(tmp_path):
    first, second = "1" * 64, "2" * 64
    target = layout.place(tmp_path, "scan.pdf", first)
    assert target == tmp_path / "scan.pdf"
    write_text_atomic(target, "the first source's file")
    (tmp_path / "scan.pdf").write_bytes(b"x")  # now holds bytes of neither source
    assert layout.place(tmp_path, "scan.pdf", second) == tmp_path / f"scan-{second[:8]}.pdf"
    # Taken names in one batch are passed over; a file of the same source keeps its name.
    taken: set[Path] = set()
    assert layout.place(tmp_path, "new.pdf", first, taken) == tmp_path / "new.pdf"
    assert layout.place(tmp_path, "new.pdf", second, taken) == tmp_path / f"new-{second[:8]}.pdf"
    same = tmp_path / "copy.bin"
    same.write_bytes(b"same bytes")
    import hashlib
    digest = hashlib.sha256(b"same bytes").hexdigest()
    assert layout.place(tmp_path, "copy.bin", digest) == same
    # A folder holding the name is never overwritten either.
    (tmp_path / "dir.pdf").mkdir()
    assert layout.place(tmp_path, "dir.pdf", first) == tmp_path / f"dir-{first[:8]}.pdf"


def test_a_file_on_the_way_does_not_block_a_folder(tmp_path):
    (tmp_path / "scans").write_bytes(b"a file called scans")
    rel = PurePath("scans/a.jpg")
    target = layout.quarantine_place(tmp_path, rel, "3" * 64)
    assert target.parent != tmp_path / "scans" and target.name == "a.jpg"
    write_atomic(target, lambda temp: temp.write_bytes(b"x"))
    assert (tmp_path / "scans").read_bytes() == b"a file called scans"


def test_watcher_takes_a_238_byte_name_and_files_named_like_folders(tmp_path):
    home = tmp_path / "home"
    inbox = home / "inbox"

    def scan(path: Path, seed: int) -> None:
        page = synth.render_prose([synth.corpus_lines()[seed] if synth.corpus_lines() else "Giấy xác nhận cư trú."],
                                  dpi=200, paper="A5", header=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        synth.write_image(path.with_suffix(".jpg"), page["image"], dpi=200).rename(path)

    long_name = "Ữ" * 78 + ".jpg"
    scan(inbox / "máy 1" / long_name, 1)
    scan(inbox / "scans", 2)  # a good scan whose name has no extension
    (inbox / "bad").write_bytes(b"not a scan at all")
    result = run_digitize(["watch", "--once"], home, timeout=300)
    assert result.returncode == 0, result.stderr
    # Then folders of the same names: a good scan and a bad file below them.
    scan(inbox / "scans" / "a.jpg", 3)
    (inbox / "bad").mkdir()
    (inbox / "bad" / "b.pdf").write_bytes(b"%PDF-1.4 broken")
    result = run_digitize(["watch", "--once"], home, timeout=300)
    assert result.returncode == 0, result.stderr
    assert not [p for p in (home / "work" / "claimed").rglob("*") if p.is_file()]  # nothing wedged
    pdfs = [p for p in (home / "archive").rglob("*.pdf") if "originals" not in p.parts]
    assert len(pdfs) == 3 and all(len(p.name.encode()) <= layout.NAME_BYTES for p in pdfs)
    originals = home / "archive" / "originals" / f"{datetime.now():%Y}" / f"{datetime.now():%m}"
    assert (originals / "scans").is_file() and (originals / "scans (2)" / "a.jpg").is_file()
    assert (originals / "máy 1" / layout.safe_name(long_name)).is_file()
    quarantine = home / "quarantine"
    assert (quarantine / "bad").is_file() and (quarantine / "bad.error.txt").is_file()
    assert (quarantine / "bad (2)" / "b.pdf").is_file() and (quarantine / "bad (2)" / "b.pdf.error.txt").is_file()
