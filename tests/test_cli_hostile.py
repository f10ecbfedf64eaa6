"""The command line as a careless or hostile user drives it: documented exit codes with
bilingual messages instead of tracebacks, and registry text printed as text, never as markup.
Every case runs the real `digitize` command in a subprocess."""
from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import run_digitize

CODE = "000.00.06.H56-241001-0011"


def refused(run, code: int) -> None:
    assert run.returncode == code, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr
    assert "lỗi / error" in run.stderr or "digitize" in run.stderr and "error:" in run.stderr


def out_commands(target: Path, scan: Path) -> dict[str, list[str]]:
    return {"coverage": ["coverage", "--format", "csv", "--out", str(target)],
            "report": ["report", "--period", "2024-Q4", "--out", str(target)],
            "coversheet": ["coversheet", CODE, "--out", str(target)],
            "process": ["process", str(scan), "--out", str(target)]}


@pytest.mark.parametrize("command", ["coverage", "report", "coversheet", "process"])
def test_an_unwritable_out_is_exit_5_with_a_bilingual_message(tmp_path, home, command):
    scan = tmp_path / "scan.jpg"
    scan.write_bytes(b"not read: the output is refused first")
    a_file = tmp_path / "a file"
    a_file.write_text("x", encoding="utf-8")
    folder = tmp_path / "a folder"
    folder.mkdir()
    # read-only for root too (sysfs); under an existing file; a folder where a file goes (or, for the
    # commands that write into a folder, a file where the folder goes)
    takes_folder = command in ("report", "process")
    for target in (Path("/sys/digitize-out"), a_file / "inside", a_file if takes_folder else folder):
        run = run_digitize(out_commands(target, scan)[command], home, timeout=120)
        refused(run, 5)
        assert "Không ghi được" in run.stderr and "Cannot write" in run.stderr, run.stderr


def test_far_periods_work_to_year_9999_and_year_1(tmp_path, home):
    for args in (["--quarter", "9999-Q4"], ["--year", "9999"], ["--quarter", "0001-Q1", "--format", "html"]):
        run = run_digitize(["coverage", *args], home)
        assert run.returncode == 0, run.stderr
        assert args[1] in run.stdout
    book = tmp_path / "far.xlsx"
    run = run_digitize(["coverage", "--month", "9999-12", "--format", "xlsx", "--out", str(book)], home)
    assert run.returncode == 0, run.stderr
    assert openpyxl.load_workbook(book).worksheets[0]["A2"].value == "9999-12"
    run = run_digitize(["report", "--period", "9999", "--out", str(tmp_path / "reports")], home)
    assert run.returncode == 0, run.stderr
    assert sorted(p.suffix for p in (tmp_path / "reports").iterdir()) == [".html", ".xlsx"]


def test_periods_outside_the_calendar_are_exit_2(home):
    run = run_digitize(["coverage", "--quarter", "0001-Q1"], home, DIGITIZE_PERIODS_CUTOFF_DAY="15")
    refused(run, 2)
    assert "nằm ngoài" in run.stderr and "falls outside 0001-01-01 .. 9999-12-31" in run.stderr
    refused(run_digitize(["report", "--period", "0000", "--out", "x"], home), 2)


def test_bad_numbers_on_the_command_line_are_exit_2(home):
    for args in (["link", "99999999999999999999", CODE], ["unlink", "-5"], ["link", "abc", CODE]):
        run = run_digitize(args, home)
        refused(run, 2)
        assert "not a document number" in run.stderr and "số tài liệu không hợp lệ" in run.stderr
    for args in (["process", "--workers", "-1", "x.jpg"], ["reprocess", "--all", "--workers", "-1"],
                 ["process", "--workers", "100000", "x.jpg"]):
        run = run_digitize(args, home)
        refused(run, 2)
        assert "--workers phải từ 0 đến 256" in run.stderr and "--workers must be 0 to 256" in run.stderr


def test_a_bad_setting_in_the_environment_is_exit_9_naming_it(home):
    run = run_digitize(["coverage"], home, DIGITIZE_PERIODS_CUTOFF_DAY="abc")
    refused(run, 9)
    assert "DIGITIZE_PERIODS_CUTOFF_DAY='abc'" in run.stderr and "must be a whole number" in run.stderr
    run = run_digitize(["coverage"], home, DIGITIZE_PERIODS_CUTOFF_DAY="40")
    refused(run, 9)
    assert "DIGITIZE_PERIODS_CUTOFF_DAY" in run.stderr and "40 is outside 1–28" in run.stderr


def test_coverage_prints_registry_text_as_text_never_markup(tmp_path, home):
    export = tmp_path / "markup.csv"
    export.write_text(
        "Mã hồ sơ,Chủ hồ sơ,Ngày tiếp nhận,Cán bộ tiếp nhận\n"
        "000.00.06.H56-241010-0001,Nguyễn [/b] An,10/10/2024,[chủ hộ] \x1b[31mđỏ\x1b[0m\n"
        "000.00.06.H56-241011-0001,[bold]Lê[/bold] [bổ sung],11/10/2024,\"x\x07\x1b]0;title\x07y\"\n",
        encoding="utf-8")
    run = run_digitize(["registry", "import", str(export), "--json"], home)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["added"] == 2
    for args in (["coverage", "--quarter", "2024-Q4"], ["coverage", "--quarter", "2024-Q4", "--by", "officer"]):
        table = run_digitize(args, home)
        assert table.returncode == 0, table.stderr
        assert "Nguyễn [/b] An" in table.stdout and "[bold]Lê[/bold] [bổ sung]" in table.stdout
        assert "\x1b" not in table.stdout and "\x07" not in table.stdout
    assert "[chủ hộ] đỏ" in table.stdout and "xy" in table.stdout
    listed = run_digitize(["registry", "list"], home)
    assert "Nguyễn [/b] An" in listed.stdout and "\x1b" not in listed.stdout
