"""Fields of a scanned document, from its OCR text and decoded barcodes.

Plain functions over plain data: NFC text per page and the barcodes
decoded on that page in, a dict of fields out. Labels are matched on a
folded copy of each line (no accents, lower case) that keeps character
positions, so values are cut from the original NFC text.
"""
from __future__ import annotations

import json
import re
from datetime import date
from pathlib import PurePath

from digitize.codes import find_codes, find_exact_codes
from digitize.vntext import fold, fold_keep_length, nfc

KINDS = ("receipt", "declaration", "certified_copy", "result", "cover_sheet", "other")
# Cover sheets printed by `digitize coversheet` carry this prefix in their QR,
# so they are recognised even when the page's OCR fails.
COVER_PREFIX = "DIGITIZE-COVER|"

CODE_SOURCES = ("qr", "barcode", "text", "filename")

# Folded labels, the most telling first; spaces, "/" and "," inside a label match loosely.
APPLICANT_LABELS = (
    "chu ho so", "ten to chuc/ca nhan", "ten to chuc, ca nhan", "ten ca nhan/to chuc", "ho va ten nguoi nop",
    "ho ten nguoi nop", "ten nguoi nop", "tiep nhan ho so cua", "nguoi nop ho so", "nguoi nop", "nguoi dung ten",
    "ho, chu dem, ten nguoi yeu cau", "ho, chu dem va ten nguoi yeu cau", "ten nguoi yeu cau", "nguoi yeu cau",
    "ho, chu dem, ten", "ho va ten", "ho, ten", "ho ten", "de nghi cua", "ong/ba", "ong (ba)", "ong, ba",
)
PROCEDURE_LABELS = (
    "ten thu tuc hanh chinh", "ten thu tuc", "noi dung yeu cau giai quyet", "thu tuc hanh chinh",
    "thu tuc",
)
ID_LABELS = ("cccd", "can cuoc", "dinh danh", "cmnd", "giay to tuy than", "chung minh")
RECEIVED_LABELS = ("nhan ho so", "tiep nhan", "ngay nop", "ngay nhan", "thoi gian nhan")
DUE_LABELS = ("hen tra", "tra ket qua", "ngay tra", "nhan ket qua")
# A signature block: role titles in capitals, the note under them, the signer's name below.
# None of it is ever a field's value (the applicant signs under "NGƯỜI NỘP HỒ SƠ", and so does
# the officer beside them under "NGƯỜI TIẾP NHẬN").
ROLE_PHRASES = ("nguoi nop", "nguoi tiep nhan", "nguoi nhan", "nguoi yeu cau", "nguoi khai", "nguoi ky",
                "cong chuc", "can bo", "truong bo phan", "truong phong", "chu tich", "giam doc", "thu truong",
                "tm", "kt")
_ROLE_RE = re.compile(r"(?<![a-z])(?:" + "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in ROLE_PHRASES)
                      + r")(?![a-z])")
SIGNATURE_NOTES = ("(ky", "ky, ghi ro", "ky va ghi ro", "ky ten", "ky, dong dau", "dong dau", "ghi ro ho")

KIND_PHRASES = {
    "cover_sheet": ("phieu phan tach ho so", "dossier cover sheet"),
    "receipt": ("giay tiep nhan ho so", "phieu tiep nhan ho so", "hen tra ket qua", "giay bien nhan ho so",
                "phieu bien nhan ho so"),
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


def _label_re(label: str) -> re.Pattern:
    """A folded label as a pattern: any spacing between its words and around "/" and ","."""
    body = re.escape(label).replace(r"\ ", r"\s+").replace("/", r"\s*/\s*").replace(",", r"\s*,\s*")
    body = body.replace(r"\(", r"\s*\(\s*")
    return re.compile(rf"(?<![a-z]){body}(?![a-z])")


def _after_label(line: str, folded: str, labels: tuple[str, ...], colon: bool = False) -> str | None:
    """The text after the first label on the line: after the colon that follows
    the label closely ("Thủ tục đề nghị giải quyết: X"), else right after it.
    With colon=True a label without a colon does not count (prose says
    "thủ tục" all the time)."""
    for label in labels:
        at = _label_re(label).search(folded)
        if at:
            rest = line[at.end():]
            cut = rest.find(":", 0, 40)
            if cut < 0 and colon:
                continue
            return (rest[cut + 1:] if cut >= 0 else rest).lstrip(" :：.-–\t")
    return None


def is_signature_line(line: str) -> bool:
    """A line of a signature block: a role title in capitals ("NGƯỜI NỘP HỒ SƠ   NGƯỜI TIẾP
    NHẬN", "TM. ỦY BAN NHÂN DÂN") or the note under one ("(Ký, ghi rõ họ tên)")."""
    folded = fold_keep_length(line)
    if any(note in folded for note in SIGNATURE_NOTES):
        return True
    letters = [c for c in line if c.isalpha()]
    upper = sum(c.isupper() for c in letters)
    return len(letters) >= 4 and upper >= 0.8 * len(letters) and bool(_ROLE_RE.search(folded))


def valid_cccd(value: str | None) -> bool:
    """12 digits: province 001-096, a century/sex digit for 1900-2099, birth year
    not in the future. There is no checksum, so this is all a shape can say."""
    if not value or not re.fullmatch(r"\d{12}", value):
        return False
    province, century, year = int(value[:3]), int(value[3]), int(value[4:6])
    if not 1 <= province <= 96 or century > 3:
        return False
    return century < 2 or 2000 + year <= date.today().year


_GROUPED_ID_RE = re.compile(r"(?<!\d)(?<!\d[ .])\d(?:[ .]?\d){11}(?!\d)(?![ .]\d)")


def find_cccd(text: str) -> str | None:
    """A valid CCCD, preferring one on a labelled line (CCCD, căn cước, định danh),
    where it may also be printed in groups ("070 2018 13651")."""
    labelled, loose = [], []
    for line, folded in _lines(text):
        is_labelled = any(label in folded for label in ID_LABELS)
        pattern = _GROUPED_ID_RE if is_labelled else CCCD_RE
        for match in pattern.finditer(line):
            value = re.sub(r"[ .]", "", match.group(0))
            if valid_cccd(value):
                (labelled if is_labelled else loose).append(value)
    found = labelled or loose
    return found[0] if found else None


_NAME_WORD = re.compile(r"[A-ZÀ-ỸĐ][a-zà-ỹđA-ZÀ-ỸĐ]*")
# Capitalised words that start the next label on the same line, never a name.
_LABEL_WORDS = {"số", "địa", "ngày", "mã", "nơi", "điện", "cccd", "cmnd", "giới", "email", "sđt"}
_HONORIFIC = re.compile(r"(?i)^(?:ông\s*[/(,]\s*bà\)?|ông|bà|anh|chị)\b[\s:.]*")


def _is_name(name: str | None) -> bool:
    """Not a role title or office read where a name was expected."""
    return bool(name) and not _ROLE_RE.search(fold(name))


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
            name = " ".join(words) if len(words) >= 2 else None
            return (name if _is_name(name) else None), False
    name = " ".join(words) if len(words) >= 2 else None
    return (name if _is_name(name) else None), len(words) == len(tokens)


def find_applicant(text: str) -> str | None:
    """The applicant's name after the most telling label. Signature blocks are
    never read (their titles are labels too: "NGƯỜI NỘP HỒ SƠ"). A wrapped line
    may carry the name on to the next line, unless that line is a label or a
    signature line of its own."""
    lines = _lines(text)
    signature = [is_signature_line(line) for line, _ in lines]
    for label in APPLICANT_LABELS:
        for number, (line, folded) in enumerate(lines):
            if signature[number]:
                continue
            value = _after_label(line, folded, (label,))
            if value is None:
                continue
            name, to_the_end = _name_from(value)
            following = lines[number + 1][0] if number + 1 < len(lines) else ""
            if to_the_end and following and ":" not in following and not signature[number + 1]:
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


# Circular 01/2023 Art. 26 QR fields, by key with marks, spaces, "_" and case folded away
# ("Mã hồ sơ", "ma_ho_so", "MaHoSo" -> "mahoso"). Vendors choose the names and the encoding.
QR_KEYS = {
    "code": ("mahoso", "masohoso", "sohoso", "mahs", "mabiennhan", "mabiennhanhoso", "sobiennhan", "dossiercode"),
    "procedure_code": ("matthc", "mathutuc", "mathutuchanhchinh", "procedurecode"),
    "cccd": ("sodinhdanh", "sodinhdanhcanhan", "madinhdanh", "dinhdanh", "socccd", "cccd", "socmnd", "cmnd",
             "cmndcccd", "cancuoc", "socancuoc", "cancuoccongdan", "sogiayto", "sogiaytotuythan",
             "sogiaytochuhoso", "giaytotuythan"),
    "applicant": ("chuhoso", "tenchuhoso", "hoten", "hovaten", "nguoinop", "tennguoinop", "tentochuccanhan"),
    "document_name": ("tengiayto", "tenvanban", "loaigiayto", "tenketqua"),
    "received": ("ngaytiepnhan", "thoigiantiepnhan", "ngaynhan"),
    "due": ("ngayhentra", "thoigianhentra", "hentra"),
    "time": ("thoigian", "thoigiantao", "ngaytao", "thoigianin", "ngayin", "ngaycap", "ngaytra", "thoidiem"),
}
_QR_FIELD = {key: field for field, keys in QR_KEYS.items() for key in keys}
_COMPACT_DATE_RE = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?:\d{2}(?:\d{2}(?:\d{2})?)?)?(?!\d)")
_ISO_DATE_RE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")


def _qr_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", fold(key))


def _qr_pairs(payload: str) -> list[tuple[str | None, str]]:
    """(key or None, value) in order: a JSON object (nested ones flattened), `key:value|…`,
    `key=value;…`, or values by position (`code|procedure|id|…`, a bare code)."""
    text = payload.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            pairs: list[tuple[str | None, str]] = []
            stack = [data]
            while stack:
                for key, value in stack.pop(0).items():
                    if isinstance(value, dict):
                        stack.append(value)
                    elif isinstance(value, (str, int, float)):
                        pairs.append((str(key), str(value)))
            return pairs
    pairs = []
    for part in re.split(r"[|;\n\t]", text):
        match = re.match(r"\s*([^:=]{1,40}?)\s*[:=]\s*(.*)$", part)
        if match and _qr_key(match[1]) in _QR_FIELD:
            pairs.append((match[1], match[2].strip()))
        elif part.strip():
            pairs.append((None, part.strip()))
    return pairs


def _payload_date(value: str) -> str | None:
    """yyyyMMdd[HHmm[ss]] (the national portal's form), ISO, or dd/mm/yyyy."""
    for pattern, order in ((_COMPACT_DATE_RE, (3, 2, 1)), (_ISO_DATE_RE, (3, 2, 1)), (NUMERIC_DATE_RE, (1, 2, 3))):
        match = pattern.search(value)
        if match:
            iso = _iso(*(match[i] for i in order))
            if iso:
                return iso
    return None


def qr_fields(payload: str) -> dict:
    """The fields a receipt's or result's QR code holds: {"code", "procedure_code", "cccd",
    "applicant", "document_name", "received_date", "due_date", "dates"}; absent ones None.
    Keyed values are taken by their key; values without one by their shape (a dossier code,
    a procedure code, a valid CCCD, a date). Nothing is repaired: a code is exact or absent."""
    found: dict = {"code": None, "procedure_code": None, "cccd": None, "applicant": None,
                   "document_name": None, "received_date": None, "due_date": None, "dates": []}
    for key, value in _qr_pairs(nfc(payload)):
        field = _QR_FIELD.get(_qr_key(key)) if key else None
        codes = find_exact_codes(value)
        procedure = PROCEDURE_CODE_RE.search(value)
        digits = re.sub(r"[ .]", "", value)
        day = _payload_date(value)
        if field == "code" or (field is None and codes):
            found["code"] = found["code"] or (codes[0] if codes else None)
        elif field == "procedure_code" or (field is None and procedure and procedure.group(0) == value):
            found["procedure_code"] = found["procedure_code"] or (procedure.group(0) if procedure else None)
        elif field == "cccd" or (field is None and valid_cccd(digits)):
            found["cccd"] = found["cccd"] or (digits if valid_cccd(digits) else None)
        elif field in ("applicant", "document_name"):
            found[field] = found[field] or value or None
        elif day and (field in ("received", "due", "time") or field is None):
            found["dates"].append(day)
            if field in ("received", "due"):
                found[f"{field}_date"] = found[f"{field}_date"] or day
    return found


def _barcode_codes(barcodes: list[dict], page_no: int) -> list[dict]:
    """Codes from the page's symbols: a QR code's dossier-code field, else any exact code in it."""
    codes = []
    for barcode in barcodes:
        source = "qr" if barcode.get("kind") == "qr" else "barcode"
        text = barcode.get("text", "")
        keyed = qr_fields(text)["code"] if source == "qr" else None
        for code in [keyed] if keyed else find_exact_codes(text):
            codes.append({"code": code, "source": source, "exact": True, "raw": code, "page": page_no})
    return codes


def _symbol_fields(barcodes: list[dict]) -> dict:
    """The first value of each field over the page's QR codes (cover sheets hold only a code)."""
    merged: dict = {"dates": []}
    for barcode in barcodes:
        if barcode.get("kind") != "qr":
            continue
        for key, value in qr_fields(barcode.get("text", "")).items():
            if key == "dates":
                merged["dates"] += value
            elif value and not merged.get(key):
                merged[key] = value
    return merged


def extract_page(text: str, barcodes: list[dict] | None = None, page_no: int = 1) -> dict:
    """Fields found on one page. Codes: barcodes first, then the text. The CCCD and
    procedure code a QR code holds outrank those read by OCR (`cccd_source` says which)."""
    text = nfc(text)
    barcodes = barcodes or []
    codes = _barcode_codes(barcodes, page_no)
    codes += [{**found, "source": "text", "page": page_no} for found in find_codes(text)]
    procedure_code, procedure_name = find_procedure(text)
    symbol = _symbol_fields(barcodes)
    dates = find_dates(text)
    dates += [{"date": day, "time": None, "role": role} for role in ("received", "due")
              if (day := symbol.get(f"{role}_date"))]
    dates += [{"date": day, "time": None, "role": None} for day in symbol["dates"]]
    text_cccd = find_cccd(text)
    return {
        "kind": classify(text, barcodes),
        "title": find_title(text),
        "codes": codes,
        "procedure_code": symbol.get("procedure_code") or procedure_code,
        "procedure_name": procedure_name,
        "applicant": find_applicant(text) or symbol.get("applicant"),
        "cccd": symbol.get("cccd") or text_cccd,
        "cccd_source": "qr" if symbol.get("cccd") else "text" if text_cccd else None,
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
    for key in ("title", "procedure_code", "procedure_name", "applicant", "number",
                "received_date", "due_date", "issue_date"):
        merged[key] = next((page[key] for page in pages if page.get(key)), None)
    # A CCCD a QR code holds outranks one read by OCR on any page.
    holder = next((p for p in pages if p.get("cccd_source") == "qr"), None) or next(
        (p for p in pages if p.get("cccd")), {})
    merged["cccd"], merged["cccd_source"] = holder.get("cccd"), holder.get("cccd_source")
    merged["dates"] = sorted({d["date"] for page in pages for d in page["dates"]})
    return merged
