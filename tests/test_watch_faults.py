"""The watcher against faults of the writer and of the machine: nothing lost, nothing half-read."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from digitize import errors
from tools.soak import (catalogue, done_shas, drop, page_bytes, page_image, start_watcher, stop, wait_until,
                        watcher_env)

from .conftest import run_digitize


def _tiff(pages: int) -> bytes:
    images = [page_image(400 + n) for n in range(pages)]
    out = io.BytesIO()
    images[0].save(out, "TIFF", dpi=(200, 200), save_all=True, append_images=images[1:], compression="tiff_lzw")
    return out.getvalue()


# A scanner driver writing a multi-page TIFF: page 1 (a valid one-page TIFF), a pause with the
# file still open, then the whole two-page file.
PAUSING_WRITER = """
import sys, time
path, first, whole = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
with open(path, "wb") as handle:
    handle.write(first); handle.flush()
    time.sleep(float(sys.argv[4]))
    handle.seek(0); handle.truncate(); handle.write(whole)
"""


def test_a_writer_that_pauses_between_pages_is_waited_for(tmp_path):
    home = tmp_path / "home"
    inbox = home / "inbox" / "may-quet"
    inbox.mkdir(parents=True)
    env = watcher_env(home, polling=True, stable_seconds=1.0, poll_interval=0.3)
    watcher = start_watcher(env)
    try:
        assert wait_until(lambda: (home / "watch.heartbeat").exists(), 30)
        writer = subprocess.Popen([sys.executable, "-c", PAUSING_WRITER, str(inbox / "hai trang.tif"),
                                   _tiff(1).hex(), _tiff(2).hex(), "5"])
        assert writer.wait(30) == 0
        assert wait_until(lambda: catalogue(home, "SELECT page_count FROM documents WHERE status='done'"), 90)
        time.sleep(1.5)
        assert catalogue(home, "SELECT page_count FROM documents") == [(2,)]
    finally:
        assert stop(watcher) == 0
    kept = list((home / "archive" / "originals").rglob("hai trang.tif"))
    assert len(kept) == 1
    with Image.open(kept[0]) as original:
        assert original.n_frames == 2


@contextmanager
def tmpfs(folder: Path, size: str):
    """A small file system of its own at `folder` (the tests run as root, as CI does)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _status(home: Path) -> dict:
    result = run_digitize(["status", "--json"], home)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _quarantined(home: Path) -> list[Path]:
    return [p for p in (home / "quarantine").rglob("*") if p.is_file()] if (home / "quarantine").exists() else []


def test_a_full_disk_pauses_the_watcher_and_the_scans_wait(tmp_path):
    with tmpfs(tmp_path / "home", "6m") as home:
        inbox = home / "inbox"
        scans = {f"giay {n}.jpg": page_bytes(600 + n) for n in range(2)}
        watcher = start_watcher(watcher_env(home, polling=True, stable_seconds=0.5, poll_interval=0.3))
        try:
            assert wait_until(lambda: _status(home)["service"]["running"], 30)
            for name, data in scans.items():  # the scans arrive, then the disk fills up
                drop(inbox / name, data)
            filler = home / "filler"
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, check=False)
            assert wait_until(lambda: "full" in (_status(home)["service"]["problem"] or ""), 60)
            assert not _quarantined(home) and not done_shas(home)
            filler.unlink()  # space again: it carries on by itself
            assert wait_until(lambda: len(done_shas(home)) == len(scans), 120)
            assert wait_until(lambda: _status(home)["service"]["problem"] is None, 30)
        finally:
            assert stop(watcher) == 0
        assert not _quarantined(home)
        assert sorted(p.name for p in (home / "archive" / "originals").rglob("*.jpg")) == sorted(scans)


def test_a_read_only_archive_pauses_the_watcher_and_the_scans_wait(tmp_path):
    home = tmp_path / "home"
    with tmpfs(home / "archive", "20m") as archive:
        drop(home / "inbox" / "to khai.jpg", page_bytes(700))
        subprocess.run(["mount", "-o", "remount,ro", str(archive)], check=True)
        watcher = start_watcher(watcher_env(home, polling=True, stable_seconds=0.5, poll_interval=0.3))
        try:
            assert wait_until(lambda: "read-only" in (_status(home)["service"]["problem"] or ""), 60)
            assert not _quarantined(home)
            subprocess.run(["mount", "-o", "remount,rw", str(archive)], check=True)
            assert wait_until(lambda: len(done_shas(home)) == 1, 120)
        finally:
            assert stop(watcher) == 0
        assert not _quarantined(home) and list(archive.rglob("to khai.jpg"))


def test_a_deleted_catalogue_stops_intake_and_a_rebuild_brings_everything_back(tmp_path):
    home = tmp_path / "home"
    inbox = home / "inbox" / "Trần Thị Bình"
    drop(inbox / "mot.jpg", page_bytes(800))
    watcher = start_watcher(watcher_env(home, polling=True, stable_seconds=0.5, poll_interval=0.3))
    try:
        assert wait_until(lambda: len(done_shas(home)) == 1, 120)
        (home / "catalogue.sqlite").unlink()
        assert wait_until(lambda: "deleted" in (_status(home)["service"]["problem"] or ""), 30)
        drop(inbox / "hai.jpg", page_bytes(801))
        time.sleep(3)
        assert (inbox / "hai.jpg").exists()  # not taken while there is no catalogue to record it in
        rebuilt = run_digitize(["catalogue", "rebuild", "--json"], home)
        assert rebuilt.returncode == 2 and "Stop the watcher" in rebuilt.stderr  # never under a running watcher
    finally:
        assert stop(watcher) == 0
    rebuilt = run_digitize(["catalogue", "rebuild", "--json"], home)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["documents"] == 1 and json.loads(rebuilt.stdout)["originals"] == 1
    assert run_digitize(["watch", "--once"], home).returncode == 0
    rows = catalogue(home, "SELECT officer, status, original IS NOT NULL FROM documents ORDER BY id")
    assert rows == [("Trần Thị Bình", "done", 1), ("Trần Thị Bình", "done", 1)]


def test_a_damaged_catalogue_is_a_clear_error_everywhere(tmp_path):
    home = tmp_path / "home"
    drop(home / "inbox" / "mot.jpg", page_bytes(900))
    assert run_digitize(["watch", "--once"], home).returncode == 0
    (home / "catalogue.sqlite").write_bytes(b"garbage " * 4096)
    (home / "catalogue.sqlite-wal").unlink(missing_ok=True)
    for command in (["coverage", "--format", "json"], ["review"], ["registry", "list"], ["watch", "--once"]):
        result = run_digitize(command, home)
        assert result.returncode == errors.CATALOGUE, (command, result.stderr)
        assert "Traceback" not in result.stderr and "catalogue rebuild" in result.stderr
    report = _status(home)
    assert "damaged" in report["catalogue_problem"]
    assert run_digitize(["catalogue", "rebuild"], home).returncode == 0
    assert catalogue(home, "SELECT COUNT(*) FROM documents") == [(1,)]
    assert list(home.glob("catalogue.sqlite.damaged-*"))  # the damaged one is kept aside
