"""Read the dossier list exported from the one-stop software (CSV or XLSX).

Plain data out: {"rows", "rejected", "duplicates", "notes", "encoding",
"columns", "lines"}. Good rows survive bad ones; every rejected row says its
line and why, in Vietnamese and English. Writing to the catalogue is store's job.

Invariants:
- Every non-empty line below the header is accounted for: it is either a row
  (added, updated or unchanged once stored) or rejected with its reason. An
  earlier line whose code a later line repeats is rejected as superseded.
  `lines` counts them, so lines == len(rows) + len(rejected).
- A file is read within bounds fixed before any parsing: the bytes of a CSV,
  the declared inflated size of an XLSX (a zip reader yields no more than the
  declared size, so a lying header cannot inflate past it), and the rows and
  columns of a sheet as its cells say, not as its <dimension> claims. A file
  past a bound is refused whole with a RegistryError (exit 4).
- Headers are compared folded (no case, accents, spaces or punctuation), so
  "Mã hồ sơ", "MA HO SO" and the national portal's "MaHoSo" are one name.
"""
from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from itertools import chain, islice
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
from openpyxl.utils import get_column_letter, range_boundaries
from openpyxl.utils.cell import coordinate_from_string, column_index_from_string

from digitize import privacy
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
HINT_ROWS = 50                            # rows below a header whose values suggest its field
EXCEL_SERIAL_RANGE = (20000, 80000)     # 1954..2119: a bare number in a date column
# The portal's dossier synchronisation writes local time (Asia/Ho_Chi_Minh, UTC+7 all year, no DST).
VIETNAM = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
# Portal fields the catalogue does not keep: recognised, so they are not reported as unplaced.
UNUSED_PORTAL_FIELDS = ("MaLinhVuc", "TenLinhVuc", "LoaiDoiTuong", "TrichYeuHoSo", "HinhThuc", "DonViXuLy", "STT")
# Bounds; rows and megabytes are settings ([registry] max_rows, max_megabytes).
MAX_COLUMNS = 64                          # registry exports have 10-30; the portal's about 20
MAX_ZIP_MEMBERS = 10_000
MAX_MERGED_CELLS = 2_000_000              # cells merged ranges may cover (the work of spreading them)
CELL_LIMIT = 1 << 20                      # characters in one CSV cell


class RegistryError(DigitizeError):
    """The file as a whole cannot be read (no code column, not a table, past a bound)."""

    exit_code = INPUT_FILE
    advice_vi = "Xuất lại danh sách hồ sơ từ phần mềm Một cửa (CSV hoặc XLSX) rồi nhập lại."
    advice_en = "Export the dossier list from the one-stop software again (CSV or XLSX) and import it again."


def _bounds(config: dict) -> tuple[int, int]:
    """(largest row count, largest size in bytes) for this site."""
    return config["registry"]["max_rows"], config["registry"]["max_megabytes"] << 20


def _too_big(size: int, limit: int, what_vi: str, what_en: str) -> RegistryError:
    return RegistryError(
        f"{what_vi} {size / 2**20:.0f} MB, vượt giới hạn {limit >> 20} MB",
        f"{what_en} {size / 2**20:.0f} MB, over the {limit >> 20} MB limit",
        "Tệp quá lớn hoặc bị hỏng/độc hại: tách danh sách theo quý, hoặc tăng [registry] max_megabytes.",
        "The file is too large or damaged/hostile: split the list by quarter, or raise [registry] max_megabytes.")


def _too_many_rows(rows: int, limit: int) -> RegistryError:
    return RegistryError(
        f"bảng có tới dòng {rows}, vượt giới hạn {limit} dòng",
        f"the table reaches row {rows}, over the {limit}-row limit",
        "Tách danh sách theo quý, hoặc tăng [registry] max_rows.",
        "Split the list by quarter, or raise [registry] max_rows.")


# --- cell values ---------------------------------------------------------------

def _portal_timestamp(digits: str) -> str | None:
    """yyyyMMdd, yyyyMMddHHmm or yyyyMMddHHmmss (the portal's local-time stamps) as an ISO date."""
    if len(digits) not in (8, 12, 14):
        return None
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])).isoformat()


def parse_date(value: object) -> str | None:
    """An ISO date from a registry cell: a date/datetime, an Excel serial number,
    dd/mm/yyyy (also d/m/yyyy, with a time, with - or .), yyyy-mm-dd (with a time
    and an offset, taken in Vietnam's time), or the portal's yyyyMMddHHmmss.
    None for an empty cell; ValueError for anything else."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        stamp = value.astimezone(VIETNAM) if value.tzinfo else value
        return stamp.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if EXCEL_SERIAL_RANGE[0] <= value <= EXCEL_SERIAL_RANGE[1]:
            return (datetime(1899, 12, 30) + timedelta(days=int(value))).date().isoformat()
        if float(value).is_integer() and (stamp := _portal_timestamp(str(int(value)))):
            return stamp
        raise ValueError(value)
    text = nfc(value).strip()
    match = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})(?:[ T,]+\d{1,2}:\d{2}(?::\d{2})?)?", text)
    if match:
        day, month, year = (int(g) for g in match.groups())
        return date(year + 2000 if year < 100 else year, month, day).isoformat()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})", text):
        return parse_date(datetime.fromisoformat(text.replace(" ", "T", 1).replace("Z", "+00:00")))
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?", text)
    if match:
        return date(*(int(g) for g in match.groups())).isoformat()
    if re.fullmatch(r"\d+", text) and (stamp := _portal_timestamp(text)):
        return stamp
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
        if not (math.isfinite(value) and float(value).is_integer() and 0 <= value < 10**12):
            return None, False
        text = f"{int(value):012d}"
    else:
        text = re.sub(r"[\s.'’-]", "", nfc(value))
    if valid_cccd(text) or re.fullmatch(r"\d{9}", text):
        return text, True
    return None, False


# --- the table -------------------------------------------------------------------

def header_key(text: object) -> str:
    """A header as compared: folded, letters and digits only ("Mã hồ sơ" == "MaHoSo")."""
    return re.sub(r"[\W_]+", "", fold(text))


def _header_map(cells: list[object], config: dict) -> dict[str, int]:
    """Row field -> column index. Where several columns fit one field, the one whose
    alias comes first in [registry.columns] wins (NgayKetThucXuLy before NgayTra)."""
    aliases = config["registry"]["columns"]
    rank: dict[str, tuple[str, int]] = {}
    for field in FIELDS:
        for order, alias in enumerate(aliases.get(CONFIG_KEYS.get(field, field), [])):
            rank.setdefault(header_key(alias), (field, order))
    best: dict[str, tuple[int, int]] = {}
    for index, cell in enumerate(cells):
        if cell is None or isinstance(cell, (int, float, datetime, date)):
            continue
        found = rank.get(header_key(cell))
        if found and (found[0] not in best or found[1] < best[found[0]][0]):
            best[found[0]] = (found[1], index)
    return {field: index for field, (_, index) in best.items()}


def _rejection(line: int, code: str | None, vi: str, en: str) -> dict:
    return {"line": line, "code": code, "reason_vi": vi, "reason_en": en}


def _cell_text(value: object, limit: int = 80) -> str:
    """A cell quoted in a message: one line, bounded."""
    text = privacy.escape_controls(nfc(value))
    return text if len(text) <= limit else text[:limit] + "…"


def _check_received(line: int, code: str, received: str, notes: list[str]) -> dict | None:
    """The code carries its receipt date (YYMMDD). A received date that is the code's with
    day and month swapped is a mm/dd export read as dd/mm: the row is rejected, naming the
    swap. Any other disagreement is kept and said (an online dossier may be received
    days after its code was issued)."""
    in_code, got = code_date(code), date.fromisoformat(received)
    if got == in_code:
        return None
    if (got.year, got.day, got.month) == (in_code.year, in_code.month, in_code.day):
        return _rejection(
            line, code,
            f"ngày tiếp nhận {got:%d/%m/%Y} khác ngày trong mã hồ sơ {in_code:%d/%m/%Y}: có lẽ tệp ghi "
            f"tháng/ngày (kiểu Mỹ) - kiểm tra định dạng ngày khi xuất",
            f"received date {got.isoformat()} disagrees with the date in the dossier code {in_code.isoformat()}: "
            f"likely a month/day (US mm/dd) date read as day/month - check the export's date format")
    notes.append(f"dòng {line}: ngày tiếp nhận {got:%d/%m/%Y} khác ngày trong mã {in_code:%d/%m/%Y} / "
                 f"line {line}: received {got.isoformat()} differs from the code's date {in_code.isoformat()}")
    return None


def _parse_row(line: int, cells: list[object], columns: dict[str, int], notes: list[str]) -> dict:
    """One registry row, or a rejection (a dict with "reason_vi")."""
    raw = {field: cells[index] if index < len(cells) else None for field, index in columns.items()}
    code = normalise_code(raw.get("code") or "")
    if not code:
        return _rejection(line, None, "thiếu mã hồ sơ", "missing dossier code")
    if not is_well_formed(code):
        shown = _cell_text(code)
        return _rejection(line, shown, f"mã hồ sơ sai dạng: {shown}", f"malformed dossier code: {shown}")
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
            shown = _cell_text(raw.get(field))
            return _rejection(line, code, f"{vi} không đọc được: {shown}", f"unreadable {en}: {shown}")
    if row["received_date"] is None:
        row["received_date"] = code_date(code).isoformat()
        notes.append(f"dòng {line}: thiếu ngày tiếp nhận, lấy theo mã hồ sơ / "
                     f"line {line}: no received date, taken from the dossier code")
    elif swapped := _check_received(line, code, row["received_date"], notes):
        return swapped
    row["cccd"], valid = parse_cccd(raw.get("cccd"))
    if not valid:
        notes.append(f"dòng {line}: số CCCD sai dạng, bỏ qua / line {line}: malformed citizen ID, ignored")
    row["status"], known = parse_status(raw.get("status"))
    if not known:
        shown = _cell_text(row["status"])
        notes.append(f"dòng {line}: trạng thái lạ '{shown}' (giữ nguyên) / line {line}: unknown status '{shown}' (kept)")
    return row


def _empty(cells) -> bool:
    return all(cell is None or str(cell).strip() == "" for cell in cells)


def _guess(rows: list[tuple[int, list[object]]], index: int) -> str | None:
    """The config key a column's values look like (codes, CCCDs, dates), for the hint."""
    values = [cells[index] for _, cells in rows[:HINT_ROWS] if index < len(cells) and not _empty([cells[index]])]
    if not values:
        return None

    def share(test) -> float:
        hits = 0
        for value in values:
            try:
                hits += bool(test(value))
            except (ValueError, OverflowError, TypeError):
                pass
        return hits / len(values)

    if share(lambda v: is_well_formed(normalise_code(str(v)))) >= 0.5:
        return "code"
    if share(lambda v: parse_cccd(v)[0]) >= 0.5:
        return "cccd"
    if share(lambda v: not isinstance(v, (int, float)) and parse_date(v)) >= 0.5:
        return "date"
    return None


def _placement_hint(cells: list[object], below: list[tuple[int, list[object]]], columns: dict[str, int],
                    config: dict) -> str:
    """The headers seen that were not placed and the [registry.columns] lines that would place
    them, guessed from the values below each header (bilingual, one line); "" when every
    header is known (placed, a lower-ranked alias, or a portal field the catalogue does not keep)."""
    unused = {header_key(name) for name in UNUSED_PORTAL_FIELDS}
    unused |= {header_key(alias) for aliases in config["registry"]["columns"].values() for alias in aliases}
    placed = set(columns.values())
    wanted = [key for key, field in (("code", "code"), ("cccd", "cccd"), *((CONFIG_KEYS[f], f) for f in DATE_FIELDS))
              if field not in columns]
    seen, fixes = [], {}
    for index, cell in enumerate(cells[:MAX_COLUMNS]):
        if index in placed or _empty([cell]) or header_key(cell) in unused:
            continue
        header = _cell_text(cell, 40)
        seen.append(f'"{header}"')
        kind = _guess(below, index)
        if kind == "date":
            kind = next((key for key in ("received", "due", "finished") if key in wanted and key not in fixes), None)
        if kind in wanted and kind not in fixes:
            fixes[kind] = f'{kind} = ["{header}"]'
    if not seen:
        return ""
    hint = f"cột chưa nhận ra / headers not placed: {', '.join(seen[:30])}"
    if fixes:
        hint += f"; thêm vào / add to [registry.columns]: {'; '.join(fixes.values())}"
    return hint


def parse_table(rows: Iterable[tuple[int, list[object]]], config: dict,
                uncomputed: dict[int, list[tuple[int, str]]] | None = None) -> dict:
    """Registry rows from a table given as (line number, cells), read once as a stream:
    only parsed rows are kept, never the table. The header is the first of the top rows
    that names the code column (exports often put a title above it). `uncomputed` maps
    a line to its formula cells that carry no computed value, as (column index, cell
    reference): such a line is rejected when one of them is in a column the import reads."""
    notes: list[str] = []
    rows = iter(rows)
    top = list(islice(rows, HEADER_SEARCH_ROWS))
    header_at, columns = None, {}
    for position, (_, cells) in enumerate(top):
        columns = _header_map(cells, config)
        if "code" in columns:
            header_at = position
            break
    if header_at is None:
        below = top + list(islice(rows, HINT_ROWS))
        position, cells = max(enumerate(cells for _, cells in top),
                              key=lambda item: sum(not _empty([c]) for c in item[1]), default=(0, []))
        hint = _placement_hint(cells, below[position + 1:], _header_map(cells, config), config) or \
            "cột chưa nhận ra / headers not placed: -"
        raise RegistryError(f"không tìm thấy cột mã hồ sơ; {hint}",
                            f"no dossier code column found; {hint}",
                            "Thêm tên cột vào [registry.columns] trong tệp cấu hình như gợi ý trên.",
                            "Add the header to [registry.columns] in the configuration as suggested above.")
    ahead = top[header_at + 1:] + list(islice(rows, HINT_ROWS))
    body = chain(ahead, rows)
    missing = [field for field in FIELDS if field not in columns]
    if missing:
        hint = _placement_hint(top[header_at][1], ahead, columns, config)
        notes.append("thiếu cột / missing columns: " + ", ".join(missing) + (f" ({hint})" if hint else ""))
    read_columns = set(columns.values())
    kept: dict[str, dict] = {}
    lines_of: dict[str, list[int]] = {}
    rejected = []
    lines = 0
    for line, cells in body:
        blank = [ref for index, ref in (uncomputed or {}).get(line, []) if index in read_columns]
        if _empty(cells) and not blank:
            continue
        lines += 1
        if blank:
            code = normalise_code(str(cells[columns["code"]] or "")) if columns["code"] < len(cells) else ""
            rejected.append(_rejection(
                line, _cell_text(code) or None,
                f"ô công thức chưa có giá trị: {', '.join(blank)} (mở tệp bằng Excel, lưu lại rồi xuất lại)",
                f"formula cell without a computed value: {', '.join(blank)} (open the file in Excel, save, "
                "then export again)"))
            continue
        row = _parse_row(line, cells, columns, notes)
        if "reason_vi" in row:
            rejected.append(row)
            continue
        lines_of.setdefault(row["code"], []).append(line)
        kept[row["code"]] = row       # a later row of the same code wins
    duplicates = [{"code": code, "lines": found, "kept": found[-1]}
                  for code, found in lines_of.items() if len(found) > 1]
    for duplicate in duplicates:
        code, kept_line = duplicate["code"], duplicate["kept"]
        notes.append(f"mã {code} lặp ở các dòng {duplicate['lines']}, giữ dòng {kept_line} / "
                     f"code {code} repeated on lines {duplicate['lines']}, kept line {kept_line}")
        rejected += [_rejection(line, code, f"mã lặp lại, dòng {kept_line} được giữ",
                                f"code repeated, line {kept_line} kept") for line in duplicate["lines"][:-1]]
    rejected.sort(key=lambda r: r["line"])
    return {"rows": list(kept.values()), "rejected": rejected, "duplicates": duplicates, "notes": notes,
            "columns": sorted(columns, key=FIELDS.index), "lines": lines}


# --- CSV and text exports ------------------------------------------------------------

def _decode(data: bytes) -> tuple[str, str]:
    """Text of a CSV/TXT export: UTF-8 (BOM or not), Excel's "Unicode Text" (UTF-16, with a
    BOM, or without one when every other byte of ASCII text is zero), else Windows-1258."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), "utf-16"
    sample = data[:4096]
    if len(sample) >= 4 and sample[1::2].count(0) > 0.4 * len(sample[1::2]) > sample[0::2].count(0):
        return data.decode("utf-16-le", errors="replace"), "utf-16-le"
    if len(sample) >= 4 and sample[0::2].count(0) > 0.4 * len(sample[0::2]) > sample[1::2].count(0):
        return data.decode("utf-16-be", errors="replace"), "utf-16-be"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1258", errors="replace"), "cp1258"


def _sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the most equal-length rows."""
    sample = [line for line in text.splitlines()[:HEADER_SEARCH_ROWS] if line.strip()]

    def score(delimiter: str) -> int:
        try:
            counts = Counter(len(row) for row in csv.reader(sample, delimiter=delimiter) if len(row) > 1)
        except csv.Error:
            return 0
        return max((width * times for width, times in counts.items()), default=0)

    return max(DELIMITERS, key=score)


def read_csv(path: Path, config: dict) -> dict:
    max_rows, max_bytes = _bounds(config)
    size = path.stat().st_size
    if size > max_bytes:
        raise _too_big(size, max_bytes, "tệp CSV nặng", "the CSV file is")
    text, encoding = _decode(path.read_bytes())
    if text.count("\n") >= max_rows:          # a CSV's rows are bounded by its lines, counted first
        raise _too_many_rows(text.count("\n") + 1, max_rows)
    text = nfc(text).replace("\x00", "")
    csv.field_size_limit(CELL_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))

    def rows() -> Iterator[tuple[int, list[str]]]:
        line = 1
        try:
            for cells in reader:
                yield line, cells[:MAX_COLUMNS]
                line = reader.line_num + 1    # a quoted cell may span lines
        except csv.Error as error:
            raise RegistryError(f"tệp CSV hỏng ở dòng {line}: {error}", f"broken CSV at line {line}: {error}") from None

    result = parse_table(rows(), config)
    result["encoding"] = encoding
    if encoding == "cp1258":
        result["notes"].insert(0, "tệp không phải UTF-8, đọc theo Windows-1258 / "
                                  "file is not UTF-8, read as Windows-1258")
    return result


# --- XLSX ------------------------------------------------------------------------------

def _check_zip(path: Path, max_bytes: int) -> None:
    """Refuse an archive whose members declare more than max_bytes inflated, or too many members.
    zipfile never yields more than a member's declared size (then checks its CRC), so the
    declared sizes bound what reading can inflate."""
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise RegistryError(f"tệp Excel có {len(members)} thành phần", f"the Excel file has {len(members)} parts")
        inflated = sum(member.file_size for member in members)
        if inflated > max_bytes:
            raise _too_big(inflated, max_bytes, "tệp Excel giải nén ra", "the Excel file inflates to")


def _sheet_facts(path: Path, sheet_path: str) -> dict:
    """What a sheet's XML says, read as a stream: the last row and column that hold a value
    or a formula (not what <dimension> claims), merged ranges, and formula cells that carry
    no computed value (line -> [(column index, reference)]). openpyxl's read-only mode gives
    neither merged ranges nor the formula behind a missing value."""
    last_row = last_column = 0
    row = column = 0                   # where we are: `r` attributes are optional in the format
    merged, uncomputed = [], {}
    with zipfile.ZipFile(path) as archive, archive.open(sheet_path) as handle:
        for event, element in ElementTree.iterparse(handle, events=("start", "end")):
            tag = element.tag.rpartition("}")[2]
            if event == "start":
                if tag == "row":
                    row, column = int(element.get("r") or row + 1), 0
                continue
            if tag == "c":
                ref = element.get("r")
                column = column_index_from_string(coordinate_from_string(ref)[0]) if ref else column + 1
                ref = ref or f"{get_column_letter(column)}{row}"
                children = {child.tag.rpartition("}")[2]: child for child in element}
                if children.keys() & {"v", "is", "f"}:
                    last_row, last_column = max(last_row, row), max(last_column, column)
                    # Writers put an empty <v/> after a formula they did not compute; only a
                    # string result (t="str") may legitimately be empty.
                    value = children.get("v")
                    if "f" in children and "is" not in children and element.get("t") != "str" and \
                            (value is None or not (value.text or "").strip()):
                        uncomputed.setdefault(row, []).append((column - 1, ref))
                element.clear()
            elif tag == "row":
                element.clear()
            elif tag == "mergeCell" and element.get("ref"):
                merged.append(range_boundaries(element.get("ref")))
    return {"rows": last_row, "columns": last_column, "merged": merged, "uncomputed": uncomputed}


def _merged_area(merged: list[tuple[int, int, int, int]], rows: int, width: int) -> int:
    """Cells the merged ranges cover within `rows` x `width`: the work of spreading them."""
    return sum(max(0, min(max_row, rows) - min_row + 1) * max(0, min(max_col, width) - min_col + 1)
               for min_col, min_row, max_col, max_row in merged)


def _spread_merged(rows: Iterable[tuple[int, tuple]], merged: list[tuple[int, int, int, int]],
                   width: int) -> Iterator[tuple[int, tuple | list]]:
    """The rows with each merged range's value (held by its top-left cell only) spread over the
    range, clipped to `width` columns; a range may start past a row's last cell. Streamed: a
    range is active from its first row to its last, its value taken when its first row passes."""
    pending = sorted((r for r in merged if r[0] <= width), key=lambda r: r[1])
    active: list[tuple[int, int, int, object]] = []        # (first column, last column, last row, value)
    at = 0
    for number, row in rows:
        active = [span for span in active if span[2] >= number]
        while at < len(pending) and pending[at][1] <= number:
            min_col, min_row, max_col, max_row = pending[at]
            at += 1
            value = row[min_col - 1] if min_row == number and min_col - 1 < len(row) else None
            active.append((min_col, min(max_col, width), max_row, value))
        if active:
            row = list(row) + [None] * (max(span[1] for span in active) - len(row))
            for min_col, max_col, _, value in active:
                row[min_col - 1:max_col] = [value] * (max_col - min_col + 1)
        yield number, row


def read_xlsx(path: Path, config: dict) -> dict:
    max_rows, max_bytes = _bounds(config)
    _check_zip(path, max_bytes)
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    notes = []
    try:
        # The first sheet with any value: exports sometimes lead with an empty one.
        for sheet in workbook.worksheets:
            if not hasattr(sheet, "_worksheet_path"):
                continue             # a chart sheet
            facts = _sheet_facts(path, sheet._worksheet_path)
            if facts["rows"]:
                break
        else:
            raise RegistryError("bảng tính trống", "the spreadsheet is empty")
        if facts["rows"] > max_rows:
            raise _too_many_rows(facts["rows"], max_rows)
        width = min(facts["columns"], MAX_COLUMNS)
        if facts["columns"] > MAX_COLUMNS:
            notes.append(f"chỉ đọc {MAX_COLUMNS} cột đầu / only the first {MAX_COLUMNS} columns are read "
                         f"(the sheet reaches column {get_column_letter(facts['columns'])})")
        area = _merged_area(facts["merged"], facts["rows"], width)
        if area > MAX_MERGED_CELLS:
            raise RegistryError(f"các ô gộp phủ {area} ô, vượt giới hạn {MAX_MERGED_CELLS}",
                                f"merged cells cover {area} cells, over the {MAX_MERGED_CELLS} limit",
                                "Bỏ gộp ô (Unmerge) trong Excel rồi xuất lại.", "Unmerge the cells in Excel and export again.")
        sheet.reset_dimensions()       # never trust <dimension>: A1:XFD1048576 would be 17 billion cells
        rows = enumerate(sheet.iter_rows(max_col=width, max_row=facts["rows"], values_only=True), 1)
        result = parse_table(_spread_merged(rows, facts["merged"], width), config, uncomputed=facts["uncomputed"])
    finally:
        workbook.close()
    result["notes"] = notes + result["notes"]
    result["encoding"] = None
    result["sheet"] = sheet.title
    return result


def read_registry(path: Path | str, config: dict) -> dict:
    """Read a registry export by its content: an XLSX is a zip archive; an old binary .xls
    is refused with advice; anything else is read as delimited text."""
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"không thấy tệp {privacy.shown(path)}", f"file not found: {privacy.shown(path)}")
    with path.open("rb") as handle:
        magic = handle.read(8)
    if magic.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise RegistryError("tệp Excel 97-2003 (.xls) chưa được hỗ trợ", "Excel 97-2003 (.xls) files are not read",
                            "Mở bằng Excel và lưu thành .xlsx hoặc CSV UTF-8 rồi nhập lại.",
                            "Open it in Excel, save as .xlsx or CSV UTF-8, and import that.")
    if zipfile.is_zipfile(path):
        try:
            return read_xlsx(path, config)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, OSError, ValueError, EOFError,
                ElementTree.ParseError) as error:
            reason = _cell_text(error, 200)
            raise RegistryError(f"không đọc được tệp Excel: {reason}", f"cannot read the Excel file: {reason}")
    return read_csv(path, config)
