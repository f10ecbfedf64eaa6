"""Registry import: real CSV and XLSX files, the catalogue upsert, and the CLI as a real process."""
from __future__ import annotations

import json
import os
import subprocess
import unicodedata
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from digitize import registry, store
from digitize.config import load_config
from tools import REPO_ROOT as PROJECT_ROOT

# Every test here runs on the SQLite catalogue and on a real PostgreSQL one.
pytestmark = pytest.mark.usefixtures("catalogue_backend")

HEADER = ["Mã hồ sơ", "Mã TTHC", "Tên thủ tục", "Chủ hồ sơ", "Số CCCD", "Địa chỉ",
          "Ngày tiếp nhận", "Ngày hẹn trả", "Ngày kết thúc xử lý", "Trạng thái"]
ROWS = [
    ["000.00.06.H56-231027-0361", "1.001193", "Đăng ký khai sinh", "Nguyễn Thị Minh Khai", "001195012345",
     "Thôn Đông, xã Hòa Bình", "27/10/2023 09:32", "30/10/2023", "30/10/2023", "10"],
    ["000.00.06.H56-231028-0002", "1.000894", "Đăng ký kết hôn", "Trần Văn Bình", "",
     "Thôn Tây", "28/10/2023", "2023-11-02", "", "4"],
]


@pytest.fixture(scope="module")
def config() -> dict:
    return load_config({})


def encode_cp1258(text: str) -> bytes:
    """As Windows writes Vietnamese in code page 1258: letters it has precomposed
    (â, ơ, ư, đ, ...) as one byte, tone marks as separate combining bytes."""
    out = b""
    for char in text:
        base, *marks = unicodedata.normalize("NFD", char)
        for at, mark in enumerate([None, *marks]):
            head = unicodedata.normalize("NFC", base + (mark or ""))
            rest = [m for i, m in enumerate(marks, 1) if i != at]
            try:
                out += head.encode("cp1258") + "".join(rest).encode("cp1258")
                break
            except UnicodeEncodeError:
                continue
    return out


def write_csv(path: Path, rows: list[list[str]], encoding: str, delimiter: str = ",") -> Path:
    lines = [delimiter.join(f'"{cell}"' if delimiter in cell else cell for cell in row) for row in rows]
    text = "\r\n".join(lines) + "\r\n"
    path.write_bytes(encode_cp1258(text) if encoding == "cp1258" else text.encode(encoding))
    return path


@pytest.mark.parametrize("encoding,delimiter", [("utf-8", ","), ("utf-8-sig", ";"), ("utf-8", "\t")])
def test_csv_utf8_with_and_without_bom_and_any_delimiter(tmp_path, config, encoding, delimiter):
    path = write_csv(tmp_path / "dossiers.csv", [HEADER, *ROWS], encoding, delimiter)
    result = registry.read_registry(path, config)
    assert result["encoding"] == encoding
    assert result["rejected"] == []
    first, second = result["rows"]
    assert first["code"] == "000.00.06.H56-231027-0361"
    assert first["applicant"] == "Nguyễn Thị Minh Khai"
    assert first["received_date"] == "2023-10-27"           # the time of day is dropped
    assert first["status"] == 10 and first["cccd"] == "001195012345"
    assert second["due_date"] == "2023-11-02" and second["finished_date"] is None and second["cccd"] is None


def test_csv_windows_1258_is_read_and_said(tmp_path, config):
    path = write_csv(tmp_path / "cp1258.csv", [HEADER, *ROWS], "cp1258", ";")
    result = registry.read_registry(path, config)
    assert result["encoding"] == "cp1258"
    assert "Windows-1258" in result["notes"][0]
    # Windows-1258 spells tones as combining marks: the result must be NFC like everything else.
    assert result["rows"][0]["applicant"] == "Nguyễn Thị Minh Khai"
    assert result["rows"][0]["procedure_name"] == "Đăng ký khai sinh"


def test_headers_match_without_accents_case_or_spacing_and_nfd(tmp_path, config):
    header = ["  ma  ho so ", "PROCEDURE CODE", unicodedata.normalize("NFD", "Tên thủ tục"), "Applicant",
              "cccd", "Dia chi", "NGÀY TIẾP NHẬN", "Due date", "Finished", "status"]
    path = write_csv(tmp_path / "odd.csv", [["DANH SÁCH HỒ SƠ QUÝ IV"], [], header, *ROWS], "utf-8")
    result = registry.read_registry(path, config)
    assert [r["code"] for r in result["rows"]] == [ROWS[0][0], ROWS[1][0]]
    assert result["rows"][0]["procedure_name"] == "Đăng ký khai sinh"
    assert result["columns"] == list(registry.FIELDS[:-1])    # no officer column in this file
    assert any("officer" in note for note in result["notes"])


def test_broken_rows_are_rejected_with_line_and_reason_and_good_rows_kept(tmp_path, config):
    rows = [HEADER, ROWS[0],
            ["000.00.06.H56-231327-0001", "", "", "", "", "", "01/12/2023", "", "", "2"],   # month 13 in code
            ["", "1.001193", "Khai sinh", "Ai đó", "", "", "01/12/2023", "", "", "2"],
            ["000.00.06.H56-231201-0002", "", "", "Lê Văn C", "", "", "31/02/2023", "", "", "2"],
            ["000.00.06.H56-231201-0003", "", "", "Lê Văn D", "12345", "", "", "", "", "Đã trả kết quả"],
            ["H56.14-231201-0004", "", "", "Lê Văn E", "", "", "1/12/2023", "", "", "99"]]
    result = registry.read_registry(write_csv(tmp_path / "broken.csv", rows, "utf-8"), config)
    rejected = {r["line"]: r for r in result["rejected"]}
    assert sorted(rejected) == [3, 4, 5]
    assert "mã hồ sơ sai dạng" in rejected[3]["reason_vi"] and "malformed" in rejected[3]["reason_en"]
    assert rejected[4]["reason_en"] == "missing dossier code"
    assert "unreadable received date" in rejected[5]["reason_en"]
    kept = {r["code"]: r for r in result["rows"]}
    assert set(kept) == {ROWS[0][0], "000.00.06.H56-231201-0003", "H56.14-231201-0004"}
    # no received date: taken from the code, and said; a status by name; a bad CCCD dropped and said
    assert kept["000.00.06.H56-231201-0003"]["received_date"] == "2023-12-01"
    assert kept["000.00.06.H56-231201-0003"]["status"] == 10
    assert kept["000.00.06.H56-231201-0003"]["cccd"] is None
    assert kept["H56.14-231201-0004"]["status"] == "99"
    assert any("line 7: unknown status '99'" in note for note in result["notes"])
    assert any("line 6: malformed citizen ID" in note for note in result["notes"])


def test_duplicated_codes_keep_the_last_and_say_so(tmp_path, config):
    changed = [*ROWS[0][:3], "Nguyễn Thị Minh Khai", "001195012345", "", "27/10/2023", "", "", "9"]
    path = write_csv(tmp_path / "dup.csv", [HEADER, ROWS[0], ROWS[1], changed], "utf-8")
    result = registry.read_registry(path, config)
    assert len(result["rows"]) == 2
    assert result["duplicates"] == [{"code": ROWS[0][0], "lines": [2, 4], "kept": 4}]
    assert next(r for r in result["rows"] if r["code"] == ROWS[0][0])["status"] == 9
    assert any("kept line 4" in note for note in result["notes"])


def test_missing_code_column_is_a_clear_error(tmp_path, config):
    path = write_csv(tmp_path / "nocode.csv", [["Tên", "Ngày"], ["A", "01/01/2024"]], "utf-8")
    with pytest.raises(registry.RegistryError) as caught:
        registry.read_registry(path, config)
    assert "mã hồ sơ" in caught.value.vi and "code column" in caught.value.en


def write_xlsx(path: Path, build) -> Path:
    workbook = openpyxl.Workbook()
    build(workbook)
    workbook.save(path)
    return path


def test_xlsx_excel_dates_text_dates_and_merged_cells(tmp_path, config):
    def build(workbook):
        sheet = workbook.active
        sheet.append(["DANH SÁCH HỒ SƠ TIẾP NHẬN"])
        sheet.merge_cells("A1:J1")                       # a title across the table
        sheet.append(HEADER)
        sheet.append([ROWS[0][0], "1.001193", "Đăng ký khai sinh", "Nguyễn Thị Minh Khai", 1195012345, "",
                      datetime(2023, 10, 27, 9, 32), datetime(2023, 10, 30), "30/10/2023", 10])
        sheet.append(["000.00.06.H56-231027-0362", "1.001193", None, "Phạm Văn Dũng", "", "",
                      "27/10/2023", 45229, None, "4"])
        sheet.merge_cells("C3:C4")                       # one procedure name for both rows
    result = registry.read_registry(write_xlsx(tmp_path / "dossiers.xlsx", build), config)
    assert result["rejected"] == []
    first, second = result["rows"]
    assert first["received_date"] == "2023-10-27" and first["due_date"] == "2023-10-30"
    assert first["finished_date"] == "2023-10-30"
    assert first["cccd"] == "001195012345"               # Excel dropped the leading zeros
    assert second["procedure_name"] == "Đăng ký khai sinh"
    assert second["due_date"] == "2023-10-30"            # serial 45229 in a General-format cell


def test_xlsx_empty_sheets(tmp_path, config):
    empty = write_xlsx(tmp_path / "empty.xlsx", lambda wb: None)
    with pytest.raises(registry.RegistryError) as caught:
        registry.read_registry(empty, config)
    assert caught.value.en == "the spreadsheet is empty"

    def leading_empty(workbook):
        data = workbook.create_sheet("Hồ sơ")
        data.append(HEADER)
        data.append(ROWS[1])
    result = registry.read_registry(write_xlsx(tmp_path / "second.xlsx", leading_empty), config)
    assert [r["code"] for r in result["rows"]] == [ROWS[1][0]] and result["sheet"] == "Hồ sơ"


def test_upsert_is_idempotent_and_records_changes(tmp_path, config):
    conn = store.connect(tmp_path / "catalogue.sqlite")
    rows = registry.read_registry(write_csv(tmp_path / "a.csv", [HEADER, *ROWS], "utf-8"), config)["rows"]
    assert store.upsert_dossiers(conn, rows)["added"] == 2
    again = store.upsert_dossiers(conn, rows)
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 2)
    changed = [{**rows[0], "status": 10, "finished_date": "2023-10-31"}, rows[1]]
    third = store.upsert_dossiers(conn, changed)
    assert (third["added"], third["updated"], third["unchanged"]) == (0, 1, 1)
    history = store.dossier_changes(conn, rows[0]["code"])
    assert [(h["field"], h["old_value"], h["new_value"]) for h in history] == [
        ("finished_date", "2023-10-30", "2023-10-31")]
    assert [d["code"] for d in store.list_dossiers(conn, "2023-10-28", "2023-12-31")] == [rows[1]["code"]]


def test_upsert_is_all_or_nothing(tmp_path, config):
    conn = store.connect(tmp_path / "catalogue.sqlite")
    rows = registry.read_registry(write_csv(tmp_path / "a.csv", [HEADER, *ROWS], "utf-8"), config)["rows"]
    with pytest.raises(KeyError):
        store.upsert_dossiers(conn, [rows[0], {"applicant": "no code"}])
    assert store.list_dossiers(conn) == []


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DIGITIZE_HOME": str(home)}
    return subprocess.run([str(PROJECT_ROOT / ".venv" / "bin" / "digitize"), *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_import_prints_counts_and_rejections_and_is_idempotent(tmp_path):
    rows = [HEADER, *ROWS, ["000.00.06.H56-231029-0001", "", "", "", "", "", "29/13/2023", "", "", "2"]]
    path = write_csv(tmp_path / "export.csv", rows, "utf-8-sig", ";")
    first = run_cli(tmp_path / "home", "registry", "import", str(path), "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["added"], report["updated"], report["unchanged"]) == (2, 0, 0)
    assert [(r["line"], r["code"]) for r in report["rejected"]] == [(4, "000.00.06.H56-231029-0001")]
    second = run_cli(tmp_path / "home", "registry", "import", str(path))
    assert second.returncode == 0
    assert "added: 0" in second.stdout and "unchanged: 2" in second.stdout and "rejected: 1" in second.stdout
    assert "dòng / line 4" in second.stdout
    listed = run_cli(tmp_path / "home", "registry", "list", "--quarter", "2023-Q4", "--json")
    dossiers = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [d["code"] for d in dossiers] == [ROWS[0][0], ROWS[1][0]]
    assert dossiers[0]["cccd"] == "001******345"         # never a full CCCD on screen
    assert "001195012345" not in listed.stdout


def test_cli_import_of_an_unreadable_file_fails_cleanly(tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    result = run_cli(tmp_path / "home", "registry", "import", str(path))
    assert result.returncode == 4
    assert "lỗi / error" in result.stderr and "Traceback" not in result.stderr
