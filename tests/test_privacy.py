"""Nothing printed leaks a CCCD or forges a line: the one masking rule (digitize.privacy) through
the real `process`, `review`, `status` and watcher log, with a citizen ID in a file name."""
from __future__ import annotations

import json
import re
import subprocess

from digitize import privacy
from tests.conftest import DIGITIZE, PROJECT_ROOT, json_lines, run_digitize
from tools import synth
from tools.soak import drop, page_bytes, watcher_env, start_watcher

CCCD = "001195012345"
MASKED = "001******345"
CODES = ("000.00.06.H56-241001-0011", "000.00.06.H56-241002-0001")


def test_one_rule_for_a_cccd_in_a_field_and_in_free_text():
    assert privacy.mask_cccd(CCCD) == MASKED
    assert privacy.mask_cccd("070123456") == "070***456"        # an old 9-digit CMND
    assert privacy.mask_ids(f"tệp {CCCD}.pdf, mã {CODES[0]}") == f"tệp {MASKED}.pdf, mã {CODES[0]}"
    assert privacy.mask_ids("số 0011950123456789") == "số 001**********789"
    digest = "0123456789012345678901234567890123456789012345678901234567890abc"   # a sha256 is not an ID
    assert privacy.mask_ids(f"sha {digest}") == f"sha {digest}"
    assert privacy.mask_ids("12345678901") == "12345678901"      # 11 digits: a phone number, not an ID


def test_control_characters_are_escaped_in_lines_and_dropped_in_tables():
    forged = "a.jpg\n2026-11-27 09:00:00,000 INFO done b.jpg\x1b[2J\u202egpj.exe"
    assert privacy.shown(forged) == "a.jpg\\n2026-11-27 09:00:00,000 INFO done b.jpg\\x1b[2J\\u202egpj.exe"
    assert privacy.for_terminal("Nguyễn\x1b[31m Văn\x1b]0;title\x07 An\r\n") == "Nguyễn Văn An  "
    assert privacy.for_terminal(f"[chủ hộ] {CCCD}") == f"[chủ hộ] {MASKED}"


def test_process_review_and_json_never_show_a_full_cccd(tmp_path, home):
    """A scan named with two dossier codes (so it waits in review) and a citizen ID."""
    page = synth.render_prose(synth.SAMPLE_PARAGRAPHS[:2], dpi=150)["image"]
    named = synth.write_image(tmp_path / f"{CODES[0]} {CODES[1]} CCCD {CCCD}.png", page, dpi=150)
    broken = tmp_path / f"hỏng {CCCD}.jpg"
    broken.write_bytes(b"")
    text = run_digitize(["process", str(named), str(broken)], home)
    assert text.returncode == 4, text.stderr
    as_json = run_digitize(["process", "--json", str(broken)], home)
    review = run_digitize(["review"], home)
    review_json = run_digitize(["review", "--json"], home)
    for run in (text, as_json, review, review_json):
        assert CCCD not in run.stdout + run.stderr
        assert MASKED in run.stdout
    [waiting] = json_lines(review_json.stdout)
    assert waiting["source"].endswith(f"CCCD {MASKED}.png")
    assert {c["code"] for c in waiting["candidates"]} == set(CODES)
    [failed] = json_lines(as_json.stdout)
    assert failed["source"].endswith(f"hỏng {MASKED}.jpg") and failed["status"] != "done"
    assert re.fullmatch(r"[0-9a-f]{64}", failed["sha256"])          # the hash is not masked
    done = [line for line in text.stdout.splitlines() if line.startswith("xong / done")]
    assert done and MASKED in done[0]


def test_status_and_the_log_mask_ids_and_a_newline_cannot_forge_a_log_line(tmp_path):
    home = tmp_path / "home"
    forged = "2026-11-27 09:00:00,000 INFO done forged.jpg"
    name = f"giấy {CCCD}\n{forged}.jpg"
    drop(home / "inbox" / "may-quet" / name, "không phải ảnh / not an image\n".encode() * 20)
    drop(home / "inbox" / "may-quet" / "trang.jpg", page_bytes(3))
    watcher = start_watcher(watcher_env(home, stable_seconds=0.3, broken_after=0.5, poll_interval=0.2), once=True)
    assert watcher.wait(180) == 0
    status = run_digitize(["status", "--json"], home)
    report = json.loads(status.stdout)
    assert report["failed"] == 1 and report["done_today"] == 1
    assert report["last_error"]["source"].endswith(f"giấy {MASKED}\n{forged}.jpg")
    assert CCCD not in status.stdout
    text = run_digitize(["status"], home).stdout
    assert CCCD not in text and f"giấy {MASKED}\\n{forged}" in text
    assert not any(line.startswith(forged) for line in text.splitlines())   # the name stays on its row
    log = (home / "logs" / "watch.log").read_text(encoding="utf-8")
    assert CCCD not in log and MASKED in log
    assert not any(line.startswith(forged) for line in log.splitlines())
    assert f"\\n{forged}" in log
    every = log.splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ", line) or line.startswith("    ")
               for line in every), every


def test_the_watcher_log_formatter_escapes_tracebacks_too(tmp_path):
    """A traceback's lines follow their record indented, escaped and masked (real logging, real file)."""
    script = (
        "import logging, sys\n"
        "from digitize.logs import setup_logging, LOG\n"
        "from pathlib import Path\n"
        "setup_logging(Path(sys.argv[1]))\n"
        "try:\n"
        f"    raise ValueError('bad name {CCCD}\\nERROR forged')\n"
        "except ValueError:\n"
        "    LOG.exception('failed on %s', 'x\\ny')\n"
    )
    subprocess.run([DIGITIZE[0], "-c", script, str(tmp_path)], check=True, capture_output=True, cwd=PROJECT_ROOT)
    lines = (tmp_path / "logs" / "watch.log").read_text(encoding="utf-8").splitlines()
    assert lines[0].endswith("ERROR failed on x\\ny")
    assert all(line.startswith("    ") for line in lines[1:]) and len(lines) > 2
    assert f"    ValueError: bad name {MASKED}" in lines and "    ERROR forged" in lines
    assert CCCD not in "\n".join(lines)
