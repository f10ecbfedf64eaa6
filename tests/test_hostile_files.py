"""The standing hostile suite for files (issue 10): generated names and damaged files
thrown at a real `digitize process` and a real `digitize watch --once`.

Names are any Unicode (NFC or NFD, control characters, up to 255 bytes, the names of
digitize's own folders); contents are tiny real pages (A6 at 200 dpi, one line of
Vietnamese from the shared corpus) as PNG, JPEG, TIFF or PDF, whole, cut short,
with bytes overwritten, empty, or replaced by noise — or a named pipe. After every run:
  - every input is exactly one of: a catalogued document with its PDF and its original
    (byte for byte), in quarantine with its note, a repeat set aside (watcher), a failure
    reported with a documented exit code (process), or untouched (junk, pipes);
  - no traceback on stderr or in the log; only documented exit codes;
  - nothing written outside the home (and --out), the sources of `process` unchanged.
Bounded in time: eight examples a test, one command run per example (well under two minutes
in all); set DIGITIZE_HOSTILE_EXAMPLES for a longer hunt.
The registry import has its own property test; this one is about files.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import sqlite3
import stat
import subprocess
import tempfile
import unicodedata
from datetime import datetime
from pathlib import Path

import pikepdf
from hypothesis import HealthCheck, event, given, settings, strategies as st
from PIL import Image

from digitize import errors
from digitize.intake import is_junk
from digitize.layout import NOTE_SUFFIX
from digitize.privacy import mask_ids
from tools import synth

from .conftest import DIGITIZE, PROJECT_ROOT

# About 4 s an example here; DIGITIZE_HOSTILE_EXAMPLES=200 for a long hunt.
RUNS = settings(max_examples=int(os.environ.get("DIGITIZE_HOSTILE_EXAMPLES", "8")), deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# A run of `process` on files may end with these (README, exit codes): bad input, engine, encrypted.
PROCESS_EXITS = {errors.OK, errors.INPUT_FILE, errors.ENGINE_FAILED, errors.ENCRYPTED_PDF}
# Folders digitize makes in its home: a file may well be called the same.
OWN_FOLDERS = ("inbox", "archive", "quarantine", "work", "claimed", "engine", "originals", "duplicates",
               "unfiled", "logs", "2026", "11", "Q4", "catalogue.sqlite", "watch.lock", "watch.heartbeat")


@functools.cache
def page_image(kind: str) -> Image.Image:
    """A6 at 200 dpi with one line of real prose (the top half of an A5 page)."""
    line = " ".join((synth.corpus_lines()[5] if synth.corpus_lines() else synth.SAMPLE_PARAGRAPHS[0]).split()[:9])
    page = synth.render_prose([line], dpi=200, paper="A5", header=False)["image"]
    image = page.crop((0, 0, page.width, page.height // 2))
    return image.convert("RGB") if kind == "jpeg" else image


def page_bytes(kind: str, mark: int) -> bytes:
    """The page in `kind`, one pixel set from `mark` so every file's bytes are its own."""
    image = page_image(kind).copy()
    image.putpixel((mark % image.width, image.height - 1 - mark // image.width % 50), 0)
    out = io.BytesIO()
    if kind == "pdf":
        image.save(out, "PDF", resolution=200.0)
    else:
        image.save(out, {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF"}[kind], dpi=(200, 200))
    return out.getvalue()


def damaged(data: bytes, damage: tuple) -> bytes:
    how = damage[0]
    if how == "cut":
        return data[: int(len(data) * damage[1])]
    if how == "overwrite":
        at = int((len(data) - 1) * damage[1])
        return data[:at] + damage[2] + data[at + len(damage[2]):]
    if how == "empty":
        return b""
    if how == "noise":
        return damage[1]
    return data


def file_name(text: str) -> str:
    """Strategy output made a possible file name: no '/' or NUL, at most 255 bytes of UTF-8."""
    name = text.replace("/", "_").replace("\x00", "_")
    while len(name.encode("utf-8")) > 255:
        name = name[:-1]
    return "_" if name in ("", ".", "..") else name


any_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
names = st.one_of(
    any_text,
    any_text.map(lambda t: unicodedata.normalize("NFD", t)),
    st.sampled_from(["Hồ sơ đăng ký khai sinh.jpg", "Nguyễn Văn Ánh", "bien nhan\n2024.pdf", "\x1b[31mred\x1b[0m.png",
                     "scan\r\x07.tif", "CON", "aux.pdf", " trailing dot. ", "-rf", "~$lock.jpg", ".hidden.png"]),
    st.sampled_from(OWN_FOLDERS),
    st.tuples(st.sampled_from(["ệ", "a", "Đ", "\u0301"]), st.sampled_from([".jpg", ".pdf", ""]))
    .map(lambda t: t[0] * ((255 - len(t[1])) // len(t[0].encode())) + t[1]),  # 255 bytes or just under
).map(file_name)
damages = st.one_of(
    st.just(("none",)), st.just(("none",)), st.just(("none",)),
    st.tuples(st.just("cut"), st.floats(0.0, 0.99)),
    st.tuples(st.just("overwrite"), st.floats(0.0, 1.0), st.binary(min_size=1, max_size=64)),
    st.just(("empty",)),
    st.tuples(st.just("noise"), st.binary(min_size=1, max_size=2000)),
)
one_file = st.fixed_dictionaries({"folder": st.one_of(st.none(), names), "name": names,
                                  "kind": st.sampled_from(["png", "jpeg", "tiff", "pdf"] * 2 + ["fifo"]), "damage": damages,
                                  "copy_of": st.one_of(st.none(), st.none(), st.integers(0, 3))})
batches = st.lists(one_file, min_size=1, max_size=4)


def lay_out(root: Path, batch: list[dict]) -> dict[Path, bytes | None]:
    """Write the batch below root: each file's bytes, or None for a named pipe (never to be
    opened). A file whose place another of the batch already took is left out."""
    written: dict[Path, bytes | None] = {}
    for number, spec in enumerate(batch):
        rel = Path(spec["folder"], spec["name"]) if spec["folder"] else Path(spec["name"])
        target, folder = root / rel, root / (spec["folder"] or ".")
        if os.path.lexists(target) or (os.path.lexists(folder) and not folder.is_dir()):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if spec["kind"] == "fifo":
            os.mkfifo(target)
            written[rel] = None
            continue
        files = [data for data in written.values() if data is not None]
        copy_of = spec["copy_of"]
        if copy_of is not None and copy_of < len(files):
            data = files[copy_of]
        else:
            data = damaged(page_bytes(spec["kind"], number + 1), spec["damage"])
        target.write_bytes(data)
        written[rel] = data
    return written


def is_fifo(path: Path) -> bool:
    return stat.S_ISFIFO(os.lstat(path).st_mode)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rows(home: Path) -> list[dict]:
    path = home / "catalogue.sqlite"
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM documents")]
    finally:
        conn.close()


def all_files(root: Path) -> list[Path]:
    """Regular files below root (pipes and folders left out)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def run(args: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess:
    """The real command, state under `home`, started in a scratch folder that must stay empty."""
    env = {**os.environ, "DIGITIZE_HOME": str(home), "DIGITIZE_PROCESSING_WORKERS": "2",
           "PYTHONPATH": str(PROJECT_ROOT), "DIGITIZE_WATCH_STABLE_SECONDS": "0.2",
           "DIGITIZE_WATCH_BROKEN_AFTER": "0.5", "DIGITIZE_WATCH_POLL_INTERVAL": "0.2",
           "DIGITIZE_WATCH_POLLING": "true"}
    return subprocess.run([*DIGITIZE, *args], capture_output=True, timeout=300, cwd=cwd, env=env)


def assert_catalogued(row: dict, data: bytes) -> None:
    """A done document: its PDF reopens, its original holds the input's bytes."""
    assert row["status"] in ("done", "skipped"), row
    with pikepdf.open(row["output"]) as pdf:
        assert len(pdf.pages) >= 1
    assert Path(row["original"]).read_bytes() == data, row


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text[-3000:]


def test_a_file_dated_year_10000_is_filed_by_when_it_was_taken():
    """Issue 10, item 5: a modification time past datetime's range (or before 1970) is the
    file's claim, not a fact: the watcher files by the time it took the file.

    On tmpfs (/dev/shm): ext4 clamps times to the year 2446, which datetime can hold."""
    with tempfile.TemporaryDirectory(prefix="year-10000-", dir="/dev/shm") as scratch:
        _year_10000(Path(scratch))


def _year_10000(tmp_path: Path) -> None:
    home = tmp_path / "home"
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    times = {"tương lai.png": 253_402_300_800, "xưa.jpg": -10_000_000_000}  # 10000-01-01, 1653
    for number, (name, when) in enumerate(times.items()):
        (inbox / name).write_bytes(page_bytes("png" if name.endswith("png") else "jpeg", 900 + number))
        os.utime(inbox / name, (when, when))
    assert (inbox / "tương lai.png").stat().st_mtime == 253_402_300_800
    months = {f"{datetime.now():%Y/%m}"}
    result = run(["watch", "--once"], home, cwd)
    months.add(f"{datetime.now():%Y/%m}")
    stderr = result.stderr.decode("utf-8", "replace")
    no_traceback(stderr, (home / "logs" / "watch.log").read_text(encoding="utf-8"))
    assert result.returncode == errors.OK, stderr[-2000:]
    catalogue = {Path(row["source"]).name: row for row in rows(home)}
    assert set(catalogue) == set(times)
    for name, row in catalogue.items():
        assert row["status"] == "done" and row["link_status"] != "linked"
        archive = home / "archive"
        assert str(Path(row["output"]).parent.relative_to(archive)) in months
        assert str(Path(row["original"]).parent.relative_to(archive / "originals")) in months
        assert_catalogued(row, Path(row["original"]).read_bytes())
    assert not any(inbox.iterdir())
    # And a restart finds nothing to trip on.
    assert run(["watch", "--once"], home, cwd).returncode == errors.OK


@RUNS
@given(batches, st.booleans())
def test_process_keeps_every_input_accounted_for(batch, to_out):
    with tempfile.TemporaryDirectory(prefix="hostile-process-") as scratch:
        root = Path(scratch)
        home, sources, out, cwd = root / "home", root / "sources", root / "out", root / "cwd"
        sources.mkdir()
        cwd.mkdir()
        inputs = lay_out(sources, batch)
        result = run(["process", *(str(sources / rel) for rel in inputs), "--json",
                      *(["--out", str(out)] if to_out else [])], home, cwd)
        stderr, stdout = result.stderr.decode("utf-8", "replace"), result.stdout.decode("utf-8")
        no_traceback(stderr)
        assert result.returncode in PROCESS_EXITS, (result.returncode, stderr)
        # Split on newlines only: a name may hold U+2028 or U+0085, which JSON leaves as they are.
        lines = [json.loads(line) for line in stdout.split("\n") if line.startswith("{")]
        # One line per distinct file given (the same path twice is one document).
        assert sorted(line["source"] for line in lines) == sorted(mask_ids(str(sources / rel)) for rel in inputs)
        catalogue = {row["sha256"]: row for row in rows(home)}
        first_failure = next((line["exit_code"] for line in lines if line["status"] != "done"), errors.OK)
        assert result.returncode == first_failure
        # The same bytes twice are one document, written again: its last line says where it is.
        last = {line["sha256"]: line for line in lines}
        for line in lines:
            event(f"process: {line['status']} (exit {line['exit_code']})")
            if line["status"] == "done":
                assert line["error"] is None
                assert catalogue[line["sha256"]]["status"] == "done"
                if last[line["sha256"]] is line:
                    output = catalogue[line["sha256"]]["output"]
                    assert Path(output).is_file() and mask_ids(output) == line["output"]
            else:
                assert line["exit_code"] in PROCESS_EXITS - {errors.OK}, line
                vi, _, en = line["error"].partition(" / ")
                assert vi and en, line
        # The sources are read, never moved or changed (a pipe never opened); nothing lands
        # outside the home and --out.
        assert {p.relative_to(sources): p.read_bytes() for p in all_files(sources)} == \
            {rel: data for rel, data in inputs.items() if data is not None}
        for rel in (rel for rel, data in inputs.items() if data is None):
            assert is_fifo(sources / rel)
            [line] = [line for line in lines if line["source"] == mask_ids(str(sources / rel))]
            assert line["exit_code"] == errors.INPUT_FILE and "Not a regular file" in line["error"]
        assert list(cwd.iterdir()) == []
        assert sorted(p.name for p in root.iterdir()) == sorted(["home", "sources", "cwd"] + (["out"] if to_out else []))
        if to_out:
            assert not any((home / "archive").rglob("*.pdf"))
            assert {p.suffix for p in all_files(out)} <= {".pdf", ".txt"}


@RUNS
@given(batches)
def test_watch_once_files_every_input_exactly_once(batch):
    with tempfile.TemporaryDirectory(prefix="hostile-watch-") as scratch:
        root = Path(scratch)
        home, cwd = root / "home", root / "cwd"
        inbox = home / "inbox"
        inbox.mkdir(parents=True)
        cwd.mkdir()
        inputs = lay_out(inbox, batch)
        result = run(["watch", "--once"], home, cwd)
        stderr = result.stderr.decode("utf-8", "replace")
        log = (home / "logs" / "watch.log").read_text(encoding="utf-8", errors="replace")
        no_traceback(stderr, log)
        assert result.returncode == errors.OK, stderr[-3000:]
        catalogue = rows(home)
        done = {row["sha256"]: row for row in catalogue if row["status"] in ("done", "skipped")}
        quarantine, duplicates = home / "quarantine", home / "archive" / "duplicates"
        quarantined = {sha(p.read_bytes()): p for p in all_files(quarantine) if not p.name.endswith(NOTE_SUFFIX)}
        kept = [sha(p.read_bytes()) for p in all_files(home / "archive" / "originals")]
        repeats = [sha(p.read_bytes()) for p in all_files(duplicates)] if duplicates.exists() else []
        waiting = {p.relative_to(inbox): p.read_bytes() for p in all_files(inbox)}
        for rel, data in inputs.items():
            if data is None:
                event("watch: a pipe, left alone")
                assert is_fifo(inbox / rel), rel
                continue
            if is_junk(rel):
                event("watch: junk, left alone")
                assert waiting.get(rel) == data, rel  # never touched
                continue
            assert rel not in waiting, rel
            key = sha(data)
            event("watch: catalogued" if key in done else "watch: quarantined")
            if key in done:
                assert_catalogued(done[key], data)
            else:
                assert key in quarantined, (rel, data[:40])
                note = quarantined[key].with_name(quarantined[key].name + NOTE_SUFFIX).read_text(encoding="utf-8")
                assert "Lỗi:" in note and "Error:" in note
        # Exactly one home per input: the copies of each content add up to its inputs.
        taken = [sha(data) for rel, data in inputs.items() if data is not None and not is_junk(rel)]
        placed = kept + list(sha(p.read_bytes()) for p in all_files(quarantine)
                             if not p.name.endswith(NOTE_SUFFIX)) + repeats
        assert sorted(placed) == sorted(taken)
        assert len(done) == len({key for key in taken if key in done})
        assert not all_files(home / "work" / "claimed") if (home / "work" / "claimed").exists() else True
        assert list(cwd.iterdir()) == [] and sorted(p.name for p in root.iterdir()) == ["cwd", "home"]
