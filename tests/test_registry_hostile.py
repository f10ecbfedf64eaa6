"""Registry exports as a hostile or careless world makes them: zip bombs, lying <dimension>s,
merged cells past a row's end, formulas never computed, mm/dd dates, UTF-16 text, the national
portal's field names. Real files (openpyxl, hand-made zips, real bytes) through the real
`digitize registry import` process, bounded in time and memory."""
from __future__ import annotations

import io
import json
import os
import re
import resource
import subprocess
import time
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from digitize import registry
from digitize.config import load_config
from tests.conftest import DIGITIZE, PROJECT_ROOT

HEADER = ["Mã hồ sơ", "Mã TTHC", "Tên thủ tục", "Chủ hồ sơ", "Số CCCD", "Ngày tiếp nhận", "Ngày hẹn trả",
          "Trạng thái"]
ROW = ["000.00.06.H56-241001-0011", "1.001193", "Đăng ký khai sinh", "Nguyễn Văn An", "001195012345",
       "01/10/2024", "04/10/2024", "4"]


@pytest.fixture(scope="module")
def config() -> dict:
    return load_config({})


def run_import(home: Path, path: Path, *extra: str, memory_limit: int = 3 << 30, timeout: float = 60) -> dict:
    """`digitize registry import PATH --json` as a real process under an address-space limit:
    {"code", "stdout", "stderr", "seconds", "peak_mb"}, peak_mb the child's own peak RSS."""
    env = {**os.environ, "DIGITIZE_HOME": str(home)}
    out, err = home.parent / f"{path.name}.out", home.parent / f"{path.name}.err"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    started = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        child = subprocess.Popen([*DIGITIZE, "registry", "import", str(path), "--json", *extra], env=env,
                                 cwd=PROJECT_ROOT, stdout=stdout, stderr=stderr, preexec_fn=limit)
        while not (waited := os.wait4(child.pid, os.WNOHANG))[0]:
            if time.monotonic() - started > timeout:
                child.kill()
                os.wait4(child.pid, 0)
                child.returncode = -9
                raise AssertionError(f"registry import ran past {timeout} s")
            time.sleep(0.05)
    _, status, usage = waited
    child.returncode = os.waitstatus_to_exitcode(status)
    return {"code": child.returncode, "stdout": out.read_text(encoding="utf-8"),
            "stderr": err.read_text(encoding="utf-8"), "seconds": time.monotonic() - started,
            "peak_mb": usage.ru_maxrss / 1024}


def xlsx_bytes(build) -> bytes:
    workbook = openpyxl.Workbook()
    build(workbook.active)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def rewrite_sheet(data: bytes, path: Path, edit) -> Path:
    """The same workbook with its first sheet's XML passed through edit(xml bytes, writer)."""
    with zipfile.ZipFile(io.BytesIO(data)) as source, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for member in source.infolist():
            content = source.read(member)
            if member.filename == "xl/worksheets/sheet1.xml":
                with target.open(member.filename, "w", force_zip64=True) as out:
                    edit(content, out)
            else:
                target.writestr(member, content)
    return path


def table(sheet, rows=(HEADER, ROW)) -> None:
    for row in rows:
        sheet.append(row)


def accounted(report: dict) -> bool:
    return report["lines"] == report["added"] + report["updated"] + report["unchanged"] + len(report["rejected"])


# --- bombs ------------------------------------------------------------------------------

def test_a_dimension_claiming_the_whole_sheet_is_read_by_its_cells(tmp_path):
    """A few-KB XLSX whose <dimension> says A1:XFD1048576 (17 billion cells): read by the cells
    it holds, in bounded memory and time."""
    def claim_everything(xml: bytes, out) -> None:
        xml = re.sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:XFD1048576"/>', xml)
        # the data row far below the header: every row between is "missing" and was padded to XFD
        out.write(re.sub(rb'r="([A-Z]*)2"', rb'r="\g<1>40000"', xml))

    path = rewrite_sheet(xlsx_bytes(table), tmp_path / "claims.xlsx", claim_everything)
    assert path.stat().st_size < 8000
    run = run_import(tmp_path / "home", path, memory_limit=2 << 30)
    assert run["code"] == 0, run["stderr"]
    report = json.loads(run["stdout"])
    assert (report["lines"], report["added"]) == (1, 1) and accounted(report)
    listed = subprocess.run([*DIGITIZE, "registry", "list", "--json"], capture_output=True, text=True, cwd=PROJECT_ROOT,
                            env={**os.environ, "DIGITIZE_HOME": str(tmp_path / "home")}, timeout=60)
    assert json.loads(listed.stdout)["applicant"] == "Nguyễn Văn An"
    assert run["seconds"] < 30 and run["peak_mb"] < 400


def test_an_xlsx_inflating_to_700_mb_is_refused_quickly(tmp_path):
    """A 1 MB XLSX whose sheet inflates to 700 MB (whitespace inside <sheetData>): refused by the
    declared inflated size before any parsing, with a bilingual error and exit 4."""
    def inflate(xml: bytes, out) -> None:
        head, tail = xml.split(b"</sheetData>")
        out.write(head)
        chunk = b" " * (1 << 22)
        for _ in range(175):             # 700 MB
            out.write(chunk)
        out.write(b"</sheetData>" + tail)

    path = rewrite_sheet(xlsx_bytes(table), tmp_path / "bomb.xlsx", inflate)
    assert path.stat().st_size < 1_100_000
    run = run_import(tmp_path / "home", path, memory_limit=2 << 30)
    assert run["code"] == 4, run["stderr"]
    assert "Traceback" not in run["stderr"]
    assert "giải nén ra 700 MB" in run["stderr"] and "inflates to 700 MB, over the 128 MB limit" in run["stderr"]
    assert run["seconds"] < 20 and run["peak_mb"] < 400


def test_rows_past_the_bound_are_refused_not_read(tmp_path):
    """A sheet whose cells reach row 1048576 (one value at the very bottom) is past max_rows."""
    def far_row(xml: bytes, out) -> None:
        out.write(xml.replace(b"</sheetData>",
                              b'<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'))

    path = rewrite_sheet(xlsx_bytes(table), tmp_path / "far.xlsx", far_row)
    run = run_import(tmp_path / "home", path, memory_limit=2 << 30)
    assert run["code"] == 4 and "Traceback" not in run["stderr"]
    assert "row 1048576, over the 200000-row limit" in run["stderr"] and "vượt giới hạn 200000 dòng" in run["stderr"]
    assert run["seconds"] < 20


def test_a_large_csv_is_refused_by_size(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.write((";".join(HEADER) + "\n").encode())
        handle.truncate(3 << 20)
    run = run_import(tmp_path / "home", path, memory_limit=2 << 30, timeout=60)
    assert run["code"] == 0, run["stderr"]
    env_small = {"DIGITIZE_REGISTRY_MAX_MEGABYTES": "2"}
    refused = subprocess.run([*DIGITIZE, "registry", "import", str(path)], capture_output=True, text=True,
                             env={**os.environ, "DIGITIZE_HOME": str(tmp_path / "home"), **env_small},
                             cwd=PROJECT_ROOT, timeout=60)
    assert refused.returncode == 4 and "tệp CSV nặng 3 MB" in refused.stderr and "over the 2 MB limit" in refused.stderr


# --- rows that used to crash or vanish ---------------------------------------------------

def test_merged_cells_past_a_rows_last_cell_and_formulas_without_values(tmp_path):
    def build(sheet):
        table(sheet, [HEADER, ROW, ["000.00.06.H56-241002-0001", "1.001193", "Khai sinh", "Lê Thị Hoa"],
                      ["000.00.06.H56-241002-0002", "1.001193", "Khai sinh", "Trần B", None, "=TODAY()"],
                      ["=\"000.00.06.H56-241002-\"&\"0003\"", "1.001193", "Khai sinh", "Phạm C"]])
        sheet.merge_cells("K3:M4")       # starts beyond every row's last cell
        sheet.merge_cells("A6:A7")       # a merged block running below the table

    path = tmp_path / "merged.xlsx"
    path.write_bytes(xlsx_bytes(build))
    run = run_import(tmp_path / "home", path)
    assert run["code"] == 0, run["stderr"]
    report = json.loads(run["stdout"])
    assert report["lines"] == 4 and report["added"] == 2 and accounted(report)
    rejected = {row["line"]: row for row in report["rejected"]}
    assert sorted(rejected) == [4, 5]
    assert "F4" in rejected[4]["reason_en"] and "formula cell without a computed value" in rejected[4]["reason_en"]
    assert "ô công thức chưa có giá trị" in rejected[4]["reason_vi"]
    assert rejected[5]["reason_en"].startswith("formula cell without a computed value: A5")


def test_a_formula_with_its_cached_value_is_read(tmp_path, config):
    def cached(xml: bytes, out) -> None:
        out.write(re.sub(rb'<c r="A2" t="inlineStr"><is><t>([^<]*)</t></is></c>',
                         rb'<c r="A2" t="str"><f>CONCATENATE("\1")</f><v>\1</v></c>', xml))

    path = rewrite_sheet(xlsx_bytes(table), tmp_path / "cached.xlsx", cached)
    assert b"<f>" in zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml")
    result = registry.read_registry(path, config)
    assert [r["code"] for r in result["rows"]] == [ROW[0]] and result["rejected"] == []


def test_mm_dd_dates_are_rejected_naming_the_swap(tmp_path, config):
    path = tmp_path / "us.csv"
    rows = [HEADER, [*ROW[:5], "10/01/2024", *ROW[6:]],                  # US 10/01 = 1 October, read as 10 January
            ["000.00.06.H56-241003-0001", "", "", "A", "", "03/10/2024", "", "2"],
            ["000.00.06.H56-241003-0002", "", "", "B", "", "04/10/2024", "", "2"]]   # received the next day
    path.write_text("\n".join(";".join(row) for row in rows), encoding="utf-8")
    result = registry.read_registry(path, config)
    assert [r["code"] for r in result["rows"]] == ["000.00.06.H56-241003-0001", "000.00.06.H56-241003-0002"]
    [swap] = result["rejected"]
    assert swap["line"] == 2 and "likely a month/day (US mm/dd) date" in swap["reason_en"]
    assert "2024-01-10" in swap["reason_en"] and "2024-10-01" in swap["reason_en"]
    assert "tháng/ngày" in swap["reason_vi"]
    assert any("line 4: received 2024-10-04 differs from the code's date 2024-10-03" in n for n in result["notes"])


def test_excel_unicode_text_export_is_read(tmp_path, config):
    """Excel's "Unicode Text (*.txt)": UTF-16 LE with a BOM, tab-separated, CRLF."""
    text = "\r\n".join("\t".join(row) for row in (HEADER, ROW)) + "\r\n"
    with_bom = tmp_path / "unicode.txt"
    with_bom.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    without_bom = tmp_path / "no-bom.txt"
    without_bom.write_bytes(text.encode("utf-16-le"))
    for path in (with_bom, without_bom):
        result = registry.read_registry(path, config)
        assert result["rejected"] == [] and result["encoding"].startswith("utf-16")
        [row] = result["rows"]
        assert (row["code"], row["applicant"], row["received_date"]) == (ROW[0], "Nguyễn Văn An", "2024-10-01")


# --- exports as they come ----------------------------------------------------------------------

PORTAL_HEADER = ["MaHoSo", "MaTTHC", "TenTTHC", "MaLinhVuc", "TenLinhVuc", "ChuHoSo", "SoGiayToChuHoSo",
                 "NgayTiepNhan", "NgayHenTra", "NgayKetThucXuLy", "NgayTra", "TrangThaiHoSo", "DonViXuLy"]
PORTAL_ROWS = [
    ["000.20.25.H55-240812-0003", "1.001193", "Đăng ký khai sinh", "G09-TP04", "Hộ tịch", "Hoàng Thị Mai",
     "001195012345", "20240812140500", "20240815170000", "20240814093000", "20240816080000", "10", "UBND xã A"],
    ["000.20.25.H55-240813-0001", "1.000894", "Đăng ký kết hôn", "G09-TP04", "Hộ tịch", "Vũ Văn Nam",
     "", "20240813080000", "20240816170000", "", "", "4", "UBND xã A"],
]


def check_portal(result: dict) -> None:
    assert result["rejected"] == []
    first, second = result["rows"]
    assert (first["code"], first["procedure_code"], first["procedure_name"]) == \
        ("000.20.25.H55-240812-0003", "1.001193", "Đăng ký khai sinh")
    assert (first["applicant"], first["cccd"], first["status"]) == ("Hoàng Thị Mai", "001195012345", 10)
    assert (first["received_date"], first["due_date"]) == ("2024-08-12", "2024-08-15")
    assert first["finished_date"] == "2024-08-14"           # NgayKetThucXuLy, not NgayTra
    assert second["finished_date"] is None and second["status"] == 4
    assert not any("headers not placed" in note for note in result["notes"])


def test_national_portal_export_in_csv_and_xlsx_without_configuration(tmp_path, config):
    path = tmp_path / "portal.csv"
    path.write_text("\n".join(",".join(f'"{c}"' for c in row) for row in [PORTAL_HEADER, *PORTAL_ROWS]),
                    encoding="utf-8")
    check_portal(registry.read_registry(path, config))

    def build(sheet):
        sheet.append(PORTAL_HEADER)
        for row in PORTAL_ROWS:     # the timestamps as numbers, as Excel keeps digit strings
            sheet.append([int(c) if c.isdigit() and len(c) == 14 else c for c in row])
    book = tmp_path / "portal.xlsx"
    book.write_bytes(xlsx_bytes(build))
    check_portal(registry.read_registry(book, config))


def test_provincial_vietnamese_headers(tmp_path, config):
    header = ["STT", "Số hồ sơ", "Tên người nộp", "Ngày nhận", "Ngày hẹn trả", "Ngày trả kết quả", "Tình trạng"]
    rows = [header, ["1", ROW[0], "Nguyễn Văn An", "01/10/2024", "04/10/2024", "03/10/2024", "Đã trả kết quả"]]
    path = tmp_path / "tinh.csv"
    path.write_text("\n".join(",".join(row) for row in rows), encoding="utf-8")
    [row] = registry.read_registry(path, config)["rows"]
    assert (row["applicant"], row["received_date"], row["finished_date"], row["status"]) == \
        ("Nguyễn Văn An", "2024-10-01", "2024-10-03", 10)
    other = [["Mã hồ sơ", "Người đứng tên", "Ngày nhận"], [ROW[0], "Lê Văn B", "01/10/2024"]]
    path.write_text("\n".join(",".join(row) for row in other), encoding="utf-8")
    assert registry.read_registry(path, config)["rows"][0]["applicant"] == "Lê Văn B"


def test_an_unplaced_column_names_the_headers_seen_and_the_fix(tmp_path):
    rows = [["STT", "Mã biên nhận", "Công dân", "Ngày nộp"], ["1", ROW[0], "Nguyễn Văn An", "01/10/2024"]]
    path = tmp_path / "other.csv"
    path.write_text("\n".join(",".join(row) for row in rows), encoding="utf-8")
    run = run_import(tmp_path / "home", path)
    assert run["code"] == 4 and "Traceback" not in run["stderr"]
    assert '"Mã biên nhận", "Công dân", "Ngày nộp"' in run["stderr"]
    assert 'code = ["Mã biên nhận"]' in run["stderr"] and 'received = ["Ngày nộp"]' in run["stderr"]
    assert "không tìm thấy cột mã hồ sơ" in run["stderr"] and "no dossier code column" in run["stderr"]
    config_file = tmp_path / "config.toml"
    config_file.write_text('[registry.columns]\ncode = ["Mã biên nhận"]\nreceived = ["Ngày nộp"]\n', encoding="utf-8")
    fixed = subprocess.run([*DIGITIZE, "registry", "import", str(path), "--json"], capture_output=True, text=True,
                           env={**os.environ, "DIGITIZE_HOME": str(tmp_path / "home"),
                                "DIGITIZE_CONFIG": str(config_file)}, cwd=PROJECT_ROOT, timeout=60)
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["added"] == 1


def test_an_old_binary_xls_is_refused_with_advice(tmp_path):
    path = tmp_path / "old.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    run = run_import(tmp_path / "home", path)
    assert run["code"] == 4 and "Excel 97-2003" in run["stderr"] and ".xlsx" in run["stderr"]


def test_portal_timestamps_and_offsets_are_dates_in_vietnam():
    assert registry.parse_date("20241231235959") == "2024-12-31"
    assert registry.parse_date(20240812140500) == "2024-08-12"
    assert registry.parse_date("2024-08-12T18:30:00Z") == "2024-08-13"       # 01:30 the next day in Hanoi
    assert registry.parse_date("2024-08-12T08:00:00+07:00") == "2024-08-12"
    assert registry.parse_date(datetime(2024, 8, 12, 9, 0)) == "2024-08-12"
    with pytest.raises(ValueError):
        registry.parse_date("20241332000000")


def test_a_sheet_written_without_cell_references_is_read(tmp_path, config):
    """`r` attributes are optional in SpreadsheetML; some writers leave them out."""
    def no_references(xml: bytes, out) -> None:
        out.write(re.sub(rb'<(c|row) r="[A-Z]*\d+"', rb"<\1", xml))

    path = rewrite_sheet(xlsx_bytes(table), tmp_path / "bare.xlsx", no_references)
    assert b'<c r=' not in zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml")
    result = registry.read_registry(path, config)
    assert [(r["code"], r["received_date"]) for r in result["rows"]] == [(ROW[0], "2024-10-01")]


def test_merged_ranges_over_a_whole_sheet_are_refused_not_spread(tmp_path):
    """One merge over 64 columns x 100000 rows (64 x 99998 cells to fill) in a few-KB file."""
    def merge_everything(xml: bytes, out) -> None:
        far = b'<row r="100000"><c r="A100000" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
        out.write(xml.replace(b"</sheetData>", far + b'<mergeCells count="1"><mergeCell ref="A3:BL100000"/>'
                                                      b"</mergeCells>", 1))

    def wide(sheet) -> None:
        table(sheet, [[*HEADER, *(f"c{n}" for n in range(56))], ROW])

    path = rewrite_sheet(xlsx_bytes(wide), tmp_path / "merged.xlsx", merge_everything)
    run = run_import(tmp_path / "home", path, memory_limit=2 << 30)
    assert run["code"] == 4 and "Traceback" not in run["stderr"], run["stderr"]
    assert "merged cells cover 6399872 cells, over the 2000000 limit" in run["stderr"]
    assert run["seconds"] < 20 and run["peak_mb"] < 400


def test_a_csv_with_more_lines_than_the_bound_is_refused_before_parsing(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(";".join(HEADER) + "\n" + (";".join(ROW) + "\n") * 200_000, encoding="utf-8")
    run = run_import(tmp_path / "home", path, memory_limit=2 << 30)
    assert run["code"] == 4 and "over the 200000-row limit" in run["stderr"]
    assert run["seconds"] < 15
