"""Read the dossier list exported from the one-stop software (CSV or XLSX).

Plain data out: {"rows", "rejected", "duplicates", "notes", "encoding",
"columns"}. Good rows survive bad ones; every rejected row says its line and
why, in Vietnamese and English. Writing to the catalogue is store's job.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
from openpyxl.utils import range_boundaries

from digitize.errors import INPUT_FILE, DigitizeError
from digitize.codes import code_date, is_well_formed, normalise_code
from digitize.extract import valid_cccd
from digitize.vntext import fold, nfc

FIELDS = ("code", "procedure_code", "procedure_name", "applicant", "cccd", "address",
          "received_date", "due_date", "finished_date", "status", "officer")
# config [registry.columns] keys that differ from the row keys.
CONFIG_KEYS = {"received_date": "received", "due_date": "due", "finished_date": "finished"}
DATE_FIELDS = ("received_date", "due_date", "finished_date")
DATE_LABELS = {"received_date": ("ngày tiếp nhận", "received date"),
               "due_date": ("ngày hẹn trả", "due date"),
               "finished_date": ("ngày kết thúc xử lý", "finished date")}
STATUS_NAMES = {
    "moi": 1, "moi tao": 1, "da tiep nhan": 2, "tiep nhan": 2, "tu choi": 3, "khong tiep nhan": 3,
    "dang xu ly": 4, "dang giai quyet": 4, "cho bo sung": 5, "yeu cau bo sung": 5,
    "cho nop phi": 6, "cho thanh toan": 6, "rut ho so": 7, "da rut": 7, "cong dan rut": 7,
    "dung xu ly": 8, "tam dung": 8, "da xu ly": 9, "da giai quyet": 9, "da xu ly xong": 9,
    "da tra ket qua": 10, "tra ket qua": 10,
}
DELIMITERS = (";", ",", "\t")
HEADER_SEARCH_ROWS = 20
EXCEL_SERIAL_RANGE = (20000, 80000)     # 1954..2119: a bare number in a date column


class RegistryError(DigitizeError):
    """The file as a whole cannot be read (no code column, not a table)."""

    exit_code = INPUT_FILE
    advice_vi = "Xuất lại danh sách hồ sơ từ phần mềm Một cửa (CSV hoặc XLSX) rồi nhập lại."
    advice_en = "Export the dossier list from the one-stop software again (CSV or XLSX) and import it again."


def parse_date(value: object) -> str | None:
    """An ISO date from a registry cell: a date/datetime, an Excel serial number,
    dd/mm/yyyy (also d/m/yyyy, with a time, with - or .), or yyyy-mm-dd.
    None for an empty cell; ValueError for anything else."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if EXCEL_SERIAL_RANGE[0] <= value <= EXCEL_SERIAL_RANGE[1]:
            return (datetime(1899, 12, 30) + timedelta(days=int(value))).date().isoformat()
        raise ValueError(value)
    text = nfc(value).strip()
    match = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})(?:[ T,]+\d{1,2}:\d{2}(?::\d{2})?)?", text)
    if match:
        day, month, year = (int(g) for g in match.groups())
        return date(year + 2000 if year < 100 else year, month, day).isoformat()
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?", text)
    if match:
        return date(*(int(g) for g in match.groups())).isoformat()
    raise ValueError(text)


def parse_status(value: object) -> tuple[int | str | None, bool]:
    """(status, known): a code 1-10, or a status name the vendors use; an
    unknown value is kept as text and flagged."""
    if value is None or str(value).strip() == "":
        return None, True
    text = nfc(value).strip()
    if re.fullmatch(r"\d+(\.0)?", text) and 1 <= int(float(text)) <= 10:
        return int(float(text)), True
    known = STATUS_NAMES.get(fold(text))
    return (known, True) if known else (text, False)


def parse_cccd(value: object) -> tuple[str | None, bool]:
    """(value, valid): 12 digits of a CCCD, or the 9 of an old CMND. Excel
    loses leading zeros when the column was numeric, so they are put back."""
    if value is None or str(value).strip() == "":
        return None, True
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = f"{int(value):012d}"
    else:
        text = re.sub(r"[\s.'’-]", "", nfc(value))
    if valid_cccd(text) or re.fullmatch(r"\d{9}", text):
        return text, True
    return None, False


def _header_map(cells: list[object], config: dict) -> dict[str, int]:
    """Row field -> column index, comparing folded headers with folded aliases."""
    aliases = config["registry"]["columns"]
    wanted = {fold(alias): field for field in FIELDS
              for alias in aliases.get(CONFIG_KEYS.get(field, field), [])}
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        field = wanted.get(fold(cell))
        if field and field not in found:
            found[field] = index
    return found


def _rejection(line: int, code: str | None, vi: str, en: str) -> dict:
    return {"line": line, "code": code, "reason_vi": vi, "reason_en": en}


def _parse_row(line: int, cells: list[object], columns: dict[str, int], notes: list[str]) -> dict:
    """One registry row, or a rejection (a dict with "reason_vi")."""
    raw = {field: cells[index] if index < len(cells) else None for field, index in columns.items()}
    code = normalise_code(raw.get("code") or "")
    if not code:
        return _rejection(line, None, "thiếu mã hồ sơ", "missing dossier code")
    if not is_well_formed(code):
        return _rejection(line, code, f"mã hồ sơ sai dạng: {code}", f"malformed dossier code: {code}")
    row = {field: None for field in FIELDS}
    row["code"] = code
    for field in ("procedure_code", "procedure_name", "applicant", "address", "officer"):
        value = raw.get(field)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = re.sub(r"\s+", " ", nfc(value)).strip() if value is not None else ""
        row[field] = text or None
    for field in DATE_FIELDS:
        try:
            row[field] = parse_date(raw.get(field))
        except (ValueError, OverflowError):
            vi, en = DATE_LABELS[field]
            return _rejection(line, code, f"{vi} không đọc được: {nfc(raw.get(field))}",
                              f"unreadable {en}: {nfc(raw.get(field))}")
    if row["received_date"] is None:
        row["received_date"] = code_date(code).isoformat()
        notes.append(f"dòng {line}: thiếu ngày tiếp nhận, lấy theo mã hồ sơ / "
                     f"line {line}: no received date, taken from the dossier code")
    row["cccd"], valid = parse_cccd(raw.get("cccd"))
    if not valid:
        notes.append(f"dòng {line}: số CCCD sai dạng, bỏ qua / line {line}: malformed citizen ID, ignored")
    row["status"], known = parse_status(raw.get("status"))
    if not known:
        notes.append(f"dòng {line}: trạng thái lạ '{row['status']}' (giữ nguyên) / "
                     f"line {line}: unknown status '{row['status']}' (kept)")
    return row


def parse_table(rows: list[tuple[int, list[object]]], config: dict) -> dict:
    """Registry rows from a table given as (line number, cells). The header is
    the first of the top rows that names the code column (exports often put
    a title above it)."""
    notes: list[str] = []
    header_at, columns = None, {}
    for position, (_, cells) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        columns = _header_map(cells, config)
        if "code" in columns:
            header_at = position
            break
    if header_at is None:
        raise RegistryError("không tìm thấy cột mã hồ sơ (xem [registry.columns] trong cấu hình)",
                            "no dossier code column found (see [registry.columns] in the configuration)")
    missing = [field for field in FIELDS if field not in columns]
    if missing:
        notes.append("thiếu cột / missing columns: " + ", ".join(missing))
    kept: dict[str, dict] = {}
    lines_of: dict[str, list[int]] = {}
    rejected = []
    for line, cells in rows[header_at + 1:]:
        if all(cell is None or str(cell).strip() == "" for cell in cells):
            continue
        row = _parse_row(line, cells, columns, notes)
        if "reason_vi" in row:
            rejected.append(row)
            continue
        lines_of.setdefault(row["code"], []).append(line)
        kept[row["code"]] = row       # a later row of the same code wins
    duplicates = [{"code": code, "lines": lines, "kept": lines[-1]}
                  for code, lines in lines_of.items() if len(lines) > 1]
    for duplicate in duplicates:
        notes.append(f"mã {duplicate['code']} lặp ở các dòng {duplicate['lines']}, giữ dòng {duplicate['kept']} / "
                     f"code {duplicate['code']} repeated on lines {duplicate['lines']}, kept line {duplicate['kept']}")
    return {"rows": list(kept.values()), "rejected": rejected, "duplicates": duplicates, "notes": notes,
            "columns": sorted(columns, key=FIELDS.index)}


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1258", errors="replace"), "cp1258"


def _sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the most equal-length rows."""
    sample = [line for line in text.splitlines()[:HEADER_SEARCH_ROWS] if line.strip()]

    def score(delimiter: str) -> int:
        counts = Counter(len(row) for row in csv.reader(sample, delimiter=delimiter) if len(row) > 1)
        return max((width * times for width, times in counts.items()), default=0)

    return max(DELIMITERS, key=score)


def read_csv(path: Path, config: dict) -> dict:
    text, encoding = _decode(Path(path).read_bytes())
    text = nfc(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    rows = []
    line = 1
    for cells in reader:
        rows.append((line, cells))
        line = reader.line_num + 1    # a quoted cell may span lines
    result = parse_table(rows, config)
    result["encoding"] = encoding
    if encoding == "cp1258":
        result["notes"].insert(0, "tệp không phải UTF-8, đọc theo Windows-1258 / "
                                  "file is not UTF-8, read as Windows-1258")
    return result


def _merged_ranges(path: Path, sheet_path: str) -> list[tuple[int, int, int, int]]:
    """Merged cell ranges of a sheet: openpyxl's read-only mode does not expose
    them, so read <mergeCells> from the sheet's XML directly."""
    ranges = []
    with zipfile.ZipFile(path) as archive:
        with archive.open(sheet_path) as handle:
            for _, element in ElementTree.iterparse(handle):
                if element.tag.endswith("}mergeCell"):
                    ranges.append(range_boundaries(element.get("ref")))
                element.clear()
    return ranges


def read_xlsx(path: Path, config: dict) -> dict:
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        # The first sheet with any value: exports sometimes lead with an empty one.
        for sheet in workbook.worksheets:
            grid = [list(row) for row in sheet.iter_rows(values_only=True)]
            if any(value is not None for row in grid for value in row):
                break
        else:
            raise RegistryError("bảng tính trống", "the spreadsheet is empty")
        # A merged cell holds its value in the top-left corner only: spread it.
        for min_col, min_row, max_col, max_row in _merged_ranges(Path(path), sheet._worksheet_path):
            value = grid[min_row - 1][min_col - 1] if min_row - 1 < len(grid) else None
            for r in range(min_row - 1, min(max_row, len(grid))):
                grid[r].extend([None] * (max_col - len(grid[r])))
                for c in range(min_col - 1, max_col):
                    grid[r][c] = value
    finally:
        workbook.close()
    result = parse_table([(number, cells) for number, cells in enumerate(grid, 1)], config)
    result["encoding"] = None
    result["sheet"] = sheet.title
    return result


def read_registry(path: Path | str, config: dict) -> dict:
    """Read a registry export by its content: an XLSX is a zip archive."""
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"không thấy tệp {path}", f"file not found: {path}")
    if zipfile.is_zipfile(path):
        try:
            return read_xlsx(path, config)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
            raise RegistryError(f"không đọc được tệp Excel: {error}", f"cannot read the Excel file: {error}")
    return read_csv(path, config)
