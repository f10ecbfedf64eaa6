"""README promises kept by the real `digitize` command without OCR: configuration precedence,
every coverage selector and format, the exit code of the first failed document, the heartbeat,
log rotation, the one-watcher lock and polling."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import openpyxl
import pikepdf

from digitize import errors, store
from tools.soak import wait_until, watcher_env

from . import quarter_registry
from .conftest import DIGITIZE, run_digitize


# --- configuration precedence ---

def test_environment_beats_the_user_file_which_beats_the_defaults(tmp_path, home):
    user = tmp_path / "user.toml"
    user.write_text('[paths]\ninbox = "/srv/from-file/inbox"\narchive = "/srv/from-file/archive"\n', encoding="utf-8")

    def paths(**env) -> dict:
        result = run_digitize(["paths", "--json"], home, **env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)
    defaults = paths(DIGITIZE_CONFIG=str(tmp_path / "absent.toml"))
    assert defaults["inbox"] == str(home / "inbox") and defaults["archive"] == str(home / "archive")
    from_file = paths(DIGITIZE_CONFIG=str(user))
    assert from_file["inbox"] == "/srv/from-file/inbox" and from_file["archive"] == "/srv/from-file/archive"
    from_env = paths(DIGITIZE_CONFIG=str(user), DIGITIZE_PATHS_INBOX="/srv/from-env/inbox")
    assert from_env["inbox"] == "/srv/from-env/inbox" and from_env["archive"] == "/srv/from-file/archive"
    # Without DIGITIZE_CONFIG the user file is ~/.config/digitize/config.toml.
    fake_home = tmp_path / "user-home"
    (fake_home / ".config" / "digitize").mkdir(parents=True)
    (fake_home / ".config" / "digitize" / "config.toml").write_text(user.read_text(encoding="utf-8"),
                                                                     encoding="utf-8")
    environment = {key: value for key, value in os.environ.items() if key != "DIGITIZE_CONFIG"}
    result = subprocess.run([*DIGITIZE, "paths", "--json"],
                            capture_output=True, text=True, timeout=60,
                            env={**environment, "HOME": str(fake_home), "DIGITIZE_HOME": str(home)})
    assert json.loads(result.stdout)["inbox"] == "/srv/from-file/inbox", result.stderr


# --- coverage from the command line: every selector, breakdown, format and --out ---

def coverage_home(tmp_path: Path) -> tuple[Path, list[str]]:
    home = tmp_path / "home"
    conn = store.connect(home / "catalogue.sqlite")
    missing = quarter_registry.build(conn)
    conn.close()
    return home, missing


def coverage(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([*DIGITIZE, "coverage", *args], capture_output=True, timeout=120, cwd=cwd,
                            env={**os.environ, "DIGITIZE_HOME": str(home)})
    assert result.returncode == 0, result.stderr.decode()
    return result


def test_coverage_selectors(tmp_path):
    home, _ = coverage_home(tmp_path)
    month = json.loads(coverage(home, "--month", "2024-09", "--format", "json").stdout)
    # September: days 62..91 of the quarter's cycle of 92 days, 3 or 4 dossiers a day.
    september = sum(1 for i in range(quarter_registry.RECEIVED) if 62 <= i % 92 <= 91)
    assert [(r["period"], r["received"]) for r in month["periods"]] == [("2024-09", september)]
    year = json.loads(coverage(home, "--year", "2024", "--format", "json").stdout)
    # Outside the quarter: 02/05 (Q2), 30/06 (Q2), 01/10 (Q4), 31/12 (Q4).
    assert [(r["period"], r["received"]) for r in year["periods"]] == [
        ("2024-Q1", 0), ("2024-Q2", 2), ("2024-Q3", 299), ("2024-Q4", 2), ("2024", 303)]
    custom = json.loads(coverage(home, "--from", "30/06/2024", "--to", "2024-07-01", "--format", "json").stdout)
    first_day = sum(1 for i in range(quarter_registry.RECEIVED) if i % 92 == 0)
    assert [(r["period"], r["received"]) for r in custom["periods"]] == [("2024-06-30..2024-07-01", 1 + first_day)]


def test_coverage_every_format_and_breakdown(tmp_path):
    home, missing = coverage_home(tmp_path)
    table = coverage(home, "--quarter", "2024-Q3", "--lang", "en").stdout.decode()
    assert "2024-Q3" in table and "85.28" in table and missing[0] in table
    rows = list(csv.reader(io.StringIO(coverage(home, "--quarter", "2024-Q3", "--format", "csv", "--by",
                                                "procedure").stdout.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Kỳ báo cáo", "Mã TTHC", "Tên thủ tục"]
    assert {row[1] for row in rows[1:]} == {"1.001193", "2.000635"}
    assert sum(int(row[3]) for row in rows[1:]) == 299
    by_officer = json.loads(coverage(home, "--quarter", "2024-Q3", "--format", "json", "--by", "officer").stdout)
    assert sum(r["received"] for r in by_officer["by_officer"]) == 299 and len(by_officer["by_officer"]) == 3
    out = tmp_path / "q3.xlsx"
    coverage(home, "--quarter", "2024-Q3", "--format", "xlsx", "--out", str(out))
    book = openpyxl.load_workbook(out)
    assert [c.value for c in book["Tổng hợp"][2][:3]] == ["2024-Q3", 299, 255]
    # An XLSX without --out is written beside the caller, named for the period.
    coverage(home, "--quarter", "2024-Q3", "--format", "xlsx", cwd=tmp_path)
    assert [p.name for p in tmp_path.glob("*2024-Q3*.xlsx")]
    page = tmp_path / "q3.html"
    coverage(home, "--quarter", "2024-Q3", "--format", "html", "--out", str(page), "--lang", "en")
    html = page.read_text(encoding="utf-8")
    assert "85.28%" in html and missing[-1] in html and "<svg" in html
    # A report that cannot be written is exit 5 with a message, not a traceback.
    blocked = tmp_path / "a file"
    blocked.write_bytes(b"")
    for command in (["coverage", "--format", "csv", "--out", str(blocked / "q3.csv")],
                    ["report", "--period", "2024-Q3", "--out", str(blocked / "out")]):
        failed = run_digitize(command, home)
        assert failed.returncode == errors.OUTPUT_FILE and "Traceback" not in failed.stderr
        assert "Cannot write" in failed.stderr
    as_json = tmp_path / "q3.json"
    coverage(home, "--quarter", "2024-Q3", "--format", "json", "--out", str(as_json))
    assert json.loads(as_json.read_text(encoding="utf-8"))["periods"][0]["digitised"] == 255


# --- exit codes that need no OCR ---

def test_the_exit_code_is_the_first_failed_documents_and_every_document_is_reported(tmp_path, home):
    locked, empty = tmp_path / "khoa.pdf", tmp_path / "rong.pdf"
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.save(locked, encryption=pikepdf.Encryption(owner="o", user="u"))
    empty.write_bytes(b"")
    first = run_digitize(["process", str(locked), str(empty), "--json"], home)
    second = run_digitize(["process", str(empty), str(locked), "--json"], home)
    assert (first.returncode, second.returncode) == (errors.ENCRYPTED_PDF, errors.INPUT_FILE)
    for result in (first, second):
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert {Path(line["source"]).name for line in lines} == {"khoa.pdf", "rong.pdf"}
        assert all(line["status"] == "failed" for line in lines)


# --- the watcher's service promises ---

def heartbeat(home: Path, pid: int, age: float, state: str = "idle") -> None:
    when = time.time() - age
    (home / "watch.heartbeat").write_text(json.dumps({"pid": pid, "epoch": when, "state": state,
                                                      "time": datetime.fromtimestamp(when).isoformat()}),
                                          encoding="utf-8")


def test_status_calls_a_stale_heartbeat_or_a_gone_process_not_running(home):
    def running() -> bool:
        result = run_digitize(["status", "--json"], home)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["service"]["running"]
    alive = os.getpid()
    heartbeat(home, alive, 1)
    assert running()
    heartbeat(home, alive, 11)                     # older than 10 s
    assert not running()
    gone = subprocess.Popen(["true"])
    gone.wait()
    heartbeat(home, gone.pid, 1)                   # fresh, but the process is gone
    assert not running()
    heartbeat(home, alive, 1, state="stopped")
    assert not running()


def test_the_log_rotates_at_5_mb_keeping_5_files(home):
    logs = home / "logs"
    logs.mkdir(parents=True)
    (logs / "watch.log").write_bytes(b"x" * (5 * 1024 * 1024 + 10))
    for number in range(1, 6):
        (logs / f"watch.log.{number}").write_bytes(f"old {number}\n".encode())
    (home / "inbox").mkdir()
    result = run_digitize(["watch", "--once"], home)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in logs.iterdir()) == ["watch.log", *(f"watch.log.{n}" for n in range(1, 6))]
    assert (logs / "watch.log.1").stat().st_size > 5 * 1024 * 1024     # the full one moved aside
    assert (logs / "watch.log").stat().st_size < 100_000
    assert (logs / "watch.log.5").read_text() == "old 4\n"             # the oldest dropped


def test_one_watcher_per_home_and_polling_on_request(tmp_path):
    home = tmp_path / "home"
    env = watcher_env(home, poll_interval=0.5, rescan_interval=3600, stable_seconds=0.5)
    first = subprocess.Popen([*DIGITIZE, "watch", "--polling"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_until(lambda: (home / "watch.heartbeat").exists(), 30)
        log = home / "logs" / "watch.log"
        assert wait_until(lambda: log.exists() and "(polling," in log.read_text(encoding="utf-8"), 10)
        second = subprocess.run([*DIGITIZE, "watch", "--once"], env=env, capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == errors.OTHER and "Another watcher is running" in second.stderr
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
