"""Fields of a scanned document, from its OCR text and decoded barcodes.

Plain functions over plain data: NFC text per page and the barcodes
decoded on that page in, a dict of fields out. Labels are matched on a
folded copy of each line (no accents, lower case) that keeps character
positions, so values are cut from the original NFC text.
"""
from __future__ import annotations

import re
from datetime import date
from pathlib import PurePath

from digitize.codes import find_codes, find_exact_codes
from digitize.vntext import fold_keep_length, nfc

KINDS = ("receipt", "declaration", "certified_copy", "result", "cover_sheet", "other")
# Cover sheets printed by `digitize coversheet` carry this prefix in their QR,
# so they are recognised even when the page's OCR fails.
COVER_PREFIX = "DIGITIZE-COVER|"

CODE_SOURCES = ("qr", "barcode", "text", "filename")

# Folded label -> field. Longer labels first where one contains another.
APPLICANT_LABELS = (
    "chu ho so", "tiep nhan ho so cua", "nguoi nop ho so", "nguoi nop",
    "ho, chu dem, ten nguoi yeu cau", "ho, chu dem va ten nguoi yeu cau", "ten nguoi yeu cau",
    "nguoi yeu cau", "ho va ten", "ho, ten", "ho ten", "de nghi cua", "ong/ba", "ong / ba", "ong (ba)", "ong, ba",
)
PROCEDURE_LABELS = (
    "ten thu tuc hanh chinh", "ten thu tuc", "noi dung yeu cau giai quyet", "thu tuc hanh chinh",
    "thu tuc",
)
ID_LABELS = ("cccd", "can cuoc", "dinh danh", "cmnd", "giay to tuy than", "chung minh")
RECEIVED_LABELS = ("nhan ho so", "tiep nhan", "ngay nop")
DUE_LABELS = ("hen tra", "tra ket qua", "ngay tra")

KIND_PHRASES = {
    "cover_sheet": ("phieu phan tach ho so", "dossier cover sheet"),
    "receipt": ("giay tiep nhan ho so", "phieu tiep nhan ho so", "hen tra ket qua"),
    "certified_copy": ("chung thuc ban sao dung voi ban chinh", "sao y ban chinh", "ban sao duoc cap tu so goc",
                       "ban sao tu so goc"),
    "declaration": ("to khai", "don de nghi", "don xin", "don dang ky", "phieu yeu cau", "ban khai",
                    "giay de nghi"),
    "result": ("quyet dinh", "giay khai sinh", "giay chung nhan", "trich luc", "giay phep",
               "giay xac nhan", "chung nhan ket hon", "van ban chung thuc"),
}

PROCEDURE_CODE_RE = re.compile(r"(?<![\d.])(\d\.\d{6})((?:\.\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}))?(?!\d)")
NUMBER_RE = re.compile(
    r"(?<!\w)Số\s*[:：.]?\s*(\d{1,6}(?:/\d{4})?/[A-ZĐ][A-ZĐ0-9]*(?:[-–.][A-ZĐ0-9]+)*(?:/[A-ZĐ0-9][A-ZĐ0-9-]*)*)"
)
CCCD_RE = re.compile(r"(?<!\d)\d{12}(?!\d)")
VERBAL_DATE_RE = re.compile(r"ngay\s*(\d{1,2})\s*thang\s*(\d{1,2})\s*nam\s*(\d{4})")
NUMERIC_DATE_RE = re.compile(r"(?<!\d)(\d{1,2})\s?[/.-]\s?(\d{1,2})\s?[/.-]\s?(\d{4})(?!\d)")
TIME_RE = re.compile(r"(?<!\d)(\d{1,2})\s*(?:gio|h)\s*(\d{1,2})\s*(?:phut)?")


def _lines(text: str) -> list[tuple[str, str]]:
    return [(line, fold_keep_length(line)) for line in nfc(text).splitlines()]


def _after_label(line: str, folded: str, labels: tuple[str, ...], colon: bool = False) -> str | None:
    """The text after the first label on the line: after the colon that follows
    the label closely ("Thủ tục đề nghị giải quyết: X"), else right after it.
    With colon=True a label without a colon does not count (prose says
    "thủ tục" all the time)."""
    for label in labels:
        at = re.search(rf"(?<![a-z]){re.escape(label)}(?![a-z])", folded)
        if at:
            rest = line[at.end():]
            cut = rest.find(":", 0, 40)
            if cut < 0 and colon:
                continue
            return (rest[cut + 1:] if cut >= 0 else rest).lstrip(" :：.-–\t")
    return None


def valid_cccd(value: str | None) -> bool:
    """12 digits: province 001-096, a century/sex digit for 1900-2099, birth year
    not in the future. There is no checksum, so this is all a shape can say."""
    if not value or not re.fullmatch(r"\d{12}", value):
        return False
    province, century, year = int(value[:3]), int(value[3]), int(value[4:6])
    if not 1 <= province <= 96 or century > 3:
        return False
    return century < 2 or 2000 + year <= date.today().year


def find_cccd(text: str) -> str | None:
    """A valid CCCD, preferring one on a labelled line (CCCD, căn cước, định danh)."""
    labelled, loose = [], []
    for line, folded in _lines(text):
        for match in CCCD_RE.finditer(line):
            if valid_cccd(match.group(0)):
                (labelled if any(label in folded for label in ID_LABELS) else loose).append(match.group(0))
    found = labelled or loose
    return found[0] if found else None


_NAME_WORD = re.compile(r"[A-ZÀ-ỸĐ][a-zà-ỹđA-ZÀ-ỸĐ]*")
# Capitalised words that start the next label on the same line, never a name.
_LABEL_WORDS = {"số", "địa", "ngày", "mã", "nơi", "điện", "cccd", "cmnd", "giới", "email", "sđt"}
_HONORIFIC = re.compile(r"(?i)^(?:ông\s*[/(,]\s*bà\)?|ông|bà|anh|chị)\b[\s:.]*")


def _name_from(value: str) -> tuple[str | None, bool]:
    """(a person's name at the start of a label's value: capitalised words, 2 to
    7, or None; whether the name ran to the end of the value)."""
    tokens = _HONORIFIC.sub("", value.strip(" .…:")).split()
    words = []
    for token in tokens[:7]:
        word = token.rstrip(",;.")
        if not _NAME_WORD.fullmatch(word) or word.lower() in _LABEL_WORDS:
            break
        words.append(word)
        if word != token:          # a comma or full stop ends the name
            return (" ".join(words) if len(words) >= 2 else None), False
    name = " ".join(words) if len(words) >= 2 else None
    return name, len(words) == len(tokens)


def find_applicant(text: str) -> str | None:
    """The applicant's name after the most telling label. A wrapped line may
    carry the name on to the next line, unless that line is a label of its own."""
    lines = _lines(text)
    for label in APPLICANT_LABELS:
        for number, (line, folded) in enumerate(lines):
            value = _after_label(line, folded, (label,))
            if value is None:
                continue
            name, to_the_end = _name_from(value)
            following = lines[number + 1][0] if number + 1 < len(lines) else ""
            if to_the_end and following and ":" not in following:
                name = _name_from(f"{value} {following}")[0] or name
            if name:
                return name
    return None


def find_procedure(text: str) -> tuple[str | None, str | None]:
    """(procedure code with any agency suffix, procedure name)."""
    code = name = None
    for line, folded in _lines(text):
        match = PROCEDURE_CODE_RE.search(line)
        if match and code is None:
            code = match.group(1) + (match.group(2) or "")
        value = _after_label(line, folded, PROCEDURE_LABELS, colon=True)
        if value and name is None:
            value = PROCEDURE_CODE_RE.sub("", value)
            value = re.sub(r"(?i)\(\s*(mã\s*(tthc|thủ tục)\s*:?)?\s*\)|mã\s*tthc\s*:?", "", value)
            value = value.strip(" .:;,-–()\t")
            if len(value) >= 4 and not set(value) <= set(".… "):
                name = re.sub(r"\s+", " ", value)
    return code, name


def find_number(text: str) -> str | None:
    match = NUMBER_RE.search(nfc(text))
    return match.group(1) if match else None


def _iso(day: str, month: str, year: str) -> str | None:
    try:
        return date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return None


def find_dates(text: str) -> list[dict]:
    """Dates in reading order: [{"date": ISO, "time": "HH:MM"|None, "role"}], role
    received / due (from the line's label), issued (a "ngày .. tháng .. năm .."
    place-and-date line) or None."""
    found = []
    for _, folded in _lines(text):
        matches = [(m, True) for m in VERBAL_DATE_RE.finditer(folded)]
        matches += [(m, False) for m in NUMERIC_DATE_RE.finditer(folded)]
        for match, verbal in sorted(matches, key=lambda item: item[0].start()):
            iso = _iso(*match.groups())
            if iso is None:
                continue
            clock = TIME_RE.search(folded[:match.start()][-40:])
            time = None
            if clock and int(clock[1]) < 24 and int(clock[2]) < 60:
                time = f"{int(clock[1]):02d}:{int(clock[2]):02d}"
            head = folded[:match.start()]
            role = ("due" if any(label in head for label in DUE_LABELS)
                    else "received" if any(label in head for label in RECEIVED_LABELS)
                    else "issued" if verbal else None)
            found.append({"date": iso, "time": time, "role": role})
    return found


def find_title(text: str) -> str | None:
    """The document's title: the first upper-case line naming a kind of paper
    ("TỜ KHAI ĐĂNG KÝ KHAI SINH", "QUYẾT ĐỊNH"), the name archives keep."""
    phrases = [p for kind in KIND_PHRASES.values() for p in kind]
    for line, folded in _lines(text):
        letters = [c for c in line if c.isalpha()]
        upper = sum(c.isupper() for c in letters)
        if len(letters) >= 6 and upper >= 0.8 * len(letters) and any(p in folded for p in phrases):
            return re.sub(r"\s+", " ", line).strip()
    return None


def classify(text: str, barcodes: list[dict] | None = None) -> str:
    """The document kind of a page. Receipts, cover sheets and certification
    stamps are recognised anywhere; between a declaration and a result the
    title, i.e. the earliest phrase, decides."""
    if any(b.get("text", "").startswith(COVER_PREFIX) for b in barcodes or ()):
        return "cover_sheet"
    folded = re.sub(r"\s+", " ", fold_keep_length(nfc(text)))
    for kind in ("cover_sheet", "receipt", "certified_copy"):
        if any(phrase in folded for phrase in KIND_PHRASES[kind]):
            return kind
    earliest = None
    for kind in ("declaration", "result"):
        for phrase in KIND_PHRASES[kind]:
            at = folded.find(phrase)
            if at >= 0 and (earliest is None or at < earliest[0]):
                earliest = (at, kind)
    return earliest[1] if earliest else "other"


def _barcode_codes(barcodes: list[dict], page_no: int) -> list[dict]:
    codes = []
    for barcode in barcodes:
        source = "qr" if barcode.get("kind") == "qr" else "barcode"
        for code in find_exact_codes(barcode.get("text", "")):
            codes.append({"code": code, "source": source, "exact": True, "raw": code, "page": page_no})
    return codes


def extract_page(text: str, barcodes: list[dict] | None = None, page_no: int = 1) -> dict:
    """Fields found on one page. Codes: barcodes first, then the text."""
    text = nfc(text)
    barcodes = barcodes or []
    codes = _barcode_codes(barcodes, page_no)
    codes += [{**found, "source": "text", "page": page_no} for found in find_codes(text)]
    procedure_code, procedure_name = find_procedure(text)
    dates = find_dates(text)
    return {
        "kind": classify(text, barcodes),
        "title": find_title(text),
        "codes": codes,
        "procedure_code": procedure_code,
        "procedure_name": procedure_name,
        "applicant": find_applicant(text),
        "cccd": find_cccd(text),
        "number": find_number(text),
        "dates": dates,
        **_dated_roles(dates),
    }


def _dated_roles(dates: list[dict]) -> dict:
    roles = {"received_date": None, "due_date": None, "issue_date": None}
    for role, key in (("received", "received_date"), ("due", "due_date"), ("issued", "issue_date")):
        roles[key] = next((d["date"] for d in dates if d["role"] == role), None)
    return roles


def filename_codes(file_name: str | None) -> list[dict]:
    """Codes in a file name an officer typed (`HS 000.00.06.H56_231027_0361.pdf`)."""
    if not file_name:
        return []
    stem = PurePath(nfc(file_name)).stem
    return [{**found, "source": "filename", "page": None} for found in find_codes(stem)]


def merge_fields(pages: list[dict], file_name: str | None = None) -> dict:
    """One document's fields from its pages' fields: codes ranked by trust
    (QR, barcode, text, file name; each code once, at its most trusted
    source), other fields from the first page that has them."""
    codes = [c for page in pages for c in page["codes"]] + filename_codes(file_name)
    ranked: list[dict] = []
    for source in CODE_SOURCES:
        # An exact reading of a code outranks a repaired reading of the same code.
        for candidate in sorted(codes, key=lambda c: not c["exact"]):
            if candidate["source"] == source and not any(r["code"] == candidate["code"] for r in ranked):
                ranked.append(candidate)
    merged = {"codes": ranked, "kinds": [page["kind"] for page in pages]}
    merged["kind"] = next((k for k in merged["kinds"] if k not in ("cover_sheet", "other")),
                          merged["kinds"][0] if pages else "other")
    for key in ("title", "procedure_code", "procedure_name", "applicant", "cccd", "number",
                "received_date", "due_date", "issue_date"):
        merged[key] = next((page[key] for page in pages if page.get(key)), None)
    merged["dates"] = sorted({d["date"] for page in pages for d in page["dates"]})
    return merged
