"""`digitize watch` as real processes against real folders (event mode and polling mode)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sqlite3
import time
import zipfile
from pathlib import Path

import pikepdf
import psutil
from PIL import Image

from digitize.assemble import pdf_sha256
from tools.soak import (catalogue, done_shas, drop, files_below, outputs, page_bytes, repeats,
                           start_watcher, wait_until, watcher_env)
from digitize.privacy import mask_ids
from tools import synth

from .conftest import corpus_paragraphs, run_digitize

FAST = {"stable_seconds": 0.5, "broken_after": 2.0, "poll_interval": 0.5}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encrypted_pdf() -> bytes:
    with pikepdf.open(io.BytesIO(page_bytes(7, "pdf"))) as pdf:
        out = io.BytesIO()
        pdf.save(out, encryption=pikepdf.Encryption(owner="chu", user="mat-khau"))
        return out.getvalue()


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("scan.jpg", page_bytes(8))
    return out.getvalue()


def huge_png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (2400, 2400), 255).save(out, "PNG")
    return out.getvalue()


def test_bad_inputs_are_quarantined_and_the_watcher_keeps_running(tmp_path):
    home = tmp_path / "home"
    inbox = home / "inbox"
    full_pdf = page_bytes(3, "pdf")
    bad = {
        "zero.pdf": b"",
        "cut short.pdf": full_pdf[: len(full_pdf) // 2],
        "hồ sơ..hỏng.pdf": b"%PDF-1.4\n" + os.urandom(3000),
        "Cán bộ Ánh/mật khẩu.pdf": encrypted_pdf(),
        "text behind.jpg": "Đây không phải là ảnh quét.\n".encode() * 20,
        "may-quet/a; rm -rf ~ $(echo x) `y` 'z'.zip": zip_bytes(),
        "IMG_0001.HEIC": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + os.urandom(2000),
        "huge.png": huge_png(),
    }
    good = {"Cán bộ Ánh/giấy tờ 079123456789 & (1).jpg": page_bytes(1),
            "may-quet/scan..final $HOME.png": page_bytes(2, "png")}
    junk = [".DS_Store", "Thumbs.db", "may-quet/desktop.ini", "~$note.docx", "copy.tmp", "big.part",
            "get.crdownload", ".hidden.jpg", "@eaDir/thumb.jpg"]
    inbox.mkdir(parents=True)
    os.mkfifo(inbox / "pipe.pdf")  # opening it would block a careless watcher forever
    process = start_watcher({**watcher_env(home, **FAST), "DIGITIZE_PROCESSING_MAX_PIXELS": "4000000"})
    try:
        assert wait_until(lambda: (home / "watch.heartbeat").exists(), 20)
        for rel in junk:
            drop(inbox / rel, page_bytes(4))
        for rel, data in {**bad, **good}.items():
            drop(inbox / rel, data)
        quarantine = home / "quarantine"
        assert wait_until(lambda: all((quarantine / rel).exists() for rel in bad)
                          and len(done_shas(home)) == 2, 90), files_below(quarantine)
        for rel in bad:
            note = (quarantine / (rel + ".error.txt")).read_text(encoding="utf-8")
            assert "Lỗi:" in note and "Cách xử lý:" in note and "Error:" in note and "What to do:" in note
            assert "Time:" in note and rel in note
        notes = {rel: (quarantine / (rel + ".error.txt")).read_text(encoding="utf-8") for rel in bad}
        assert "empty" in notes["zero.pdf"] and "password" in notes["Cán bộ Ánh/mật khẩu.pdf"]
        # HEIC is read (phones save it): a broken one is damaged, not of an unsupported type.
        assert "too large" in notes["huge.png"] and "damaged or unreadable" in notes["IMG_0001.HEIC"]
        assert process.poll() is None
        # Junk and the pipe are left alone, never moved or quarantined.
        for rel in junk + ["pipe.pdf"]:
            assert os.path.lexists(inbox / rel), rel
        officers = dict(catalogue(home, "SELECT sha256, officer FROM documents WHERE status='done'"))
        assert officers == {sha(good["Cán bộ Ánh/giấy tờ 079123456789 & (1).jpg"]): "Cán bộ Ánh",
                            sha(good["may-quet/scan..final $HOME.png"]): "may-quet"}
        # A fixed file dropped again under the same name is processed.
        drop(inbox / "cut short.pdf", full_pdf)
        assert wait_until(lambda: sha(full_pdf) in done_shas(home), 30)

        report = json.loads(run_digitize(["status", "--json"], home).stdout)
        assert report["service"]["running"] and report["service"]["pid"] == process.pid
        assert report["failed"] == len(bad) and report["failed_today"] == len(bad)
        assert report["done_today"] == 3 and report["in_progress"] == 0
        assert report["waiting"] == 0  # junk is not waiting
        assert report["last_error"]["error"]
        assert "079123456789" not in (home / "logs" / "watch.log").read_text(encoding="utf-8")
        assert "079******789" in (home / "logs" / "watch.log").read_text(encoding="utf-8")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    assert json.loads(run_digitize(["status", "--json"], home).stdout)["service"]["running"] is False


def test_polling_slow_writer_burst_and_repeats(tmp_path):
    home = tmp_path / "home"
    inbox = home / "inbox"
    process = start_watcher(watcher_env(home, polling=True, **{**FAST, "stable_seconds": 1.0}))
    try:
        slow = page_bytes(20, "pdf")
        target = inbox / "chậm" / "slow scan.pdf"
        target.parent.mkdir(parents=True)
        chunk = len(slow) // 16
        with target.open("wb") as handle:  # about 4 s in pieces, each gap shorter than the delay
            for offset in range(0, len(slow), chunk):
                handle.write(slow[offset: offset + chunk])
                handle.flush()
                time.sleep(0.25)
                assert target.exists(), "taken before it was complete"
        burst = {f"đợt/b{n:02d}.jpg": page_bytes(100 + n) for n in range(10)}
        for rel, data in burst.items():
            drop(inbox / rel, data)
        twice = page_bytes(200)
        drop(inbox / "a" / "same.jpg", twice)
        drop(inbox / "b" / "same again.jpg", twice)
        expected = {sha(slow), sha(twice), *map(sha, burst.values())}
        assert wait_until(lambda: set(done_shas(home)) == expected and repeats(home) == 1, 120)
        drop(inbox / "a" / "same.jpg", twice)  # the scanner rewrites it in place
        assert wait_until(lambda: repeats(home) == 2, 30)
        time.sleep(2)
        assert repeats(home) == 2 and sorted(done_shas(home)) == sorted(expected)
        # The rewrite of a/same.jpg is always a repeat; the same bytes at one place are kept once.
        kept = {p.relative_to(home / "archive" / "duplicates") for p in files_below(home / "archive" / "duplicates")}
        assert Path("a/same.jpg") in kept and kept <= {Path("a/same.jpg"), Path("b/same again.jpg")}
        assert sorted(pdf_sha256(p) for p in outputs(home)) == sorted(expected)
        with pikepdf.open(next(p for p in outputs(home) if p.stem == "slow scan")) as pdf:
            assert len(pdf.pages) == 1
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def test_sigkill_and_restart_resume_without_loss_or_doubles(tmp_path):
    home = tmp_path / "home"
    env = watcher_env(home, **FAST)
    datas = {f"k/scan {n}.{kind}": page_bytes(300 + n, kind) for n, kind in enumerate(["jpg", "pdf"] * 4)}
    for rel, data in datas.items():
        drop(home / "inbox" / rel, data)
    process = start_watcher(env)
    claimed = home / "work" / "claimed"
    assert wait_until(lambda: len(done_shas(home)) >= 1, 60)
    children = psutil.Process(process.pid).children(recursive=True)
    process.kill()
    process.wait()
    assert wait_until(lambda: not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE
                                      for child in children), 10), "workers outlived the watcher"
    stale = home / "work" / "engine" / "0123456789ab-stale"
    stale.mkdir(parents=True, exist_ok=True)
    once = start_watcher(env, once=True)
    assert once.wait(120) == 0
    expected = sorted(map(sha, datas.values()))
    assert sorted(done_shas(home)) == expected
    assert sorted(pdf_sha256(p) for p in outputs(home)) == expected
    originals = files_below(home / "archive" / "originals")
    assert sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in originals) == expected
    assert not files_below(claimed, hidden=True) and not stale.exists()
    assert not files_below(home / "inbox") and repeats(home) == 0

    # The crash windows, recreated exactly: (a) the row is written but the
    # original not yet filed; (b) the PDF is written but no row yet.
    conn = sqlite3.connect(home / "catalogue.sqlite")
    (sha_a, original_a), (sha_b, original_b) = conn.execute(
        "SELECT sha256, original FROM documents ORDER BY id LIMIT 2").fetchall()
    conn.execute("DELETE FROM documents WHERE sha256=?", (sha_b,))
    conn.commit()
    conn.close()
    for number, original in enumerate((original_a, original_b)):
        back = claimed / f"{number:016x}-1-0" / "k" / Path(original).name
        back.parent.mkdir(parents=True)
        os.rename(original, back)
    once = start_watcher(env, once=True)
    assert once.wait(120) == 0
    assert Path(original_a).exists() and sorted(done_shas(home)) == expected
    assert sorted(pdf_sha256(p) for p in outputs(home)) == expected  # no second PDF
    assert len(files_below(home / "archive" / "originals")) == len(datas)
    assert repeats(home) == 0 and not files_below(claimed, hidden=True)


def test_log_lines_never_carry_a_full_cccd():
    assert mask_ids("tệp 001203004567.pdf, mã 000.00.06.H56-231027-0361") == \
        "tệp 001******567.pdf, mã 000.00.06.H56-231027-0361"


def test_ctrl_c_mid_batch_finishes_in_flight_pages_and_exits_0(tmp_path):
    home = tmp_path / "home"
    env = watcher_env(home, **FAST)
    datas = {f"t/scan {n}.jpg": page_bytes(400 + n) for n in range(8)}
    for rel, data in datas.items():
        drop(home / "inbox" / rel, data)
    process = start_watcher(env)
    assert wait_until(lambda: len(done_shas(home)) >= 1, 60)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the workers get it too
    assert process.wait(30) == 0
    assert not list((home / "work" / "engine").iterdir())  # no half-done pages left behind
    once = start_watcher(env, once=True)
    assert once.wait(120) == 0
    assert sorted(done_shas(home)) == sorted(map(sha, datas.values()))
    assert len(outputs(home)) == len(datas) and repeats(home) == 0


def test_file_timeout_fails_the_file_not_the_batch(tmp_path):
    from digitize import config as site_config, engine
    from digitize.pipelines import load_pipeline

    slow = tmp_path / "three pages.pdf"
    # Full pages of dense prose: tesseract needs well over a second for each.
    images = [synth.render_prose(corpus_paragraphs("ho-tich.txt", 20 * n, 20), dpi=300)["image"] for n in range(3)]
    images[0].save(slow, "PDF", resolution=300.0, save_all=True, append_images=images[1:])
    quick = drop(tmp_path / "one.jpg", page_bytes(510))
    config = site_config.load_config({"DIGITIZE_HOME": str(tmp_path / "home")})

    def run(limit):
        return {scanned.source.name: scanned for scanned in engine.run(
            [slow, quick], load_pipeline("intake"), config, 1, tmp_path, file_timeout=limit)}
    # With one worker the second page starts only when the first, over a second of OCR, is done:
    # past the half-second limit, so the file fails there, with the time-limit error.
    limited = run(0.5)
    assert "longer than the limit" in limited["three pages.pdf"].error.en
    assert limited["three pages.pdf"].error.exit_code == 7
    # The one-page file has no second page to hold back: it finishes.
    assert limited["one.jpg"].error is None and len(limited["one.jpg"].pages) == 1
    # Without the limit the same file is fine: the failure above is the limit's doing.
    unlimited = run(None)
    assert unlimited["three pages.pdf"].error is None and len(unlimited["three pages.pdf"].pages) == 3
