"""Synthetic ground truth: Vietnamese administrative pages, scanner damage, file writers.

A render returns a *page*: a plain dict
    {"image": PIL.Image (L, or RGB with color=True), "dpi", "paper", "kind",
     "words": [NFC words in reading order, exactly as drawn], "text": " ".join(words),
     "codes": {identifiers printed or encoded on the page},
     "fields": {the dossier the page belongs to}, "angle", "orientation", "skew"}.
`scan(page, angle=..., ...)` returns a copy with the image degraded like an office
scanner would and the geometry truth updated (orientation + skew = angle, CCW).
Layout follows Decree 30/2020 (Liberation Serif, 13-14 pt, two-column header).
"""
from __future__ import annotations

import csv
import io
import random
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import zxingcpp
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from digitize.fonts import font_path
from digitize.vntext import nfc
from tools import REPO_ROOT

CORPUS_DIR = REPO_ROOT.parent / "shared" / "corpus" / "vi"

PAPER_MM = {"A4": (210.0, 297.0), "A5": (148.0, 210.0)}
# Margins (left, top, right, bottom) in mm, Decree 30/2020 for A4; tighter on A5.
MARGINS_MM = {"A4": (30.0, 20.0, 15.0, 20.0), "A5": (20.0, 14.0, 10.0, 14.0)}
LINE_FACTOR = 1.32
PAPER_TINT = (250, 247, 238)

MOTTO = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
SLOGAN = "Độc lập - Tự do - Hạnh phúc"
RECEIPT_TITLE = "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ"
QR_SYSTEM_NAME = "Hệ thống thông tin giải quyết thủ tục hành chính tỉnh"

# Procedure codes other than 1.001193 (birth registration) are illustrative.
PROCEDURES = (
    ("1.001193", "Đăng ký khai sinh", ("Tờ khai đăng ký khai sinh", "Giấy chứng sinh")),
    ("1.000894", "Đăng ký kết hôn", ("Tờ khai đăng ký kết hôn", "Giấy xác nhận tình trạng hôn nhân")),
    ("1.000656", "Đăng ký khai tử", ("Tờ khai đăng ký khai tử", "Giấy báo tử")),
    ("2.000815", "Chứng thực bản sao từ bản chính", ("Bản chính giấy tờ", "Bản sao cần chứng thực")),
    ("1.004227", "Cấp bản sao trích lục hộ tịch", ("Tờ khai cấp bản sao trích lục hộ tịch",)),
)
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ")
MIDDLE_MALE = ("Văn", "Đức", "Minh", "Quốc", "Hữu", "Thành")
MIDDLE_FEMALE = ("Thị", "Ngọc", "Thu", "Thanh", "Mỹ", "Kim")
GIVEN_MALE = ("An", "Bình", "Cường", "Dũng", "Hải", "Hùng", "Khánh", "Long", "Nam", "Phúc", "Quang", "Tuấn")
GIVEN_FEMALE = ("Anh", "Bích", "Chi", "Dung", "Hà", "Hằng", "Hương", "Lan", "Mai", "Nga", "Thảo", "Yến")
HAMLETS = ("Thôn 1", "Thôn 3", "Ấp Tân Lập", "Ấp Phú Hòa", "Tổ dân phố 5", "Thôn Đồng Tiến")
PLACE = {"commune": "Tân Phú", "district": "Đồng Phú", "province": "Bình Phước", "province_code": "070"}

# The project's own prose for sample pages (written for this project).
SAMPLE_PARAGRAPHS = (
    "Bộ phận tiếp nhận và trả kết quả của xã có trách nhiệm hướng dẫn tổ chức, cá nhân chuẩn bị hồ sơ "
    "đầy đủ, đúng quy định ngay trong lần đến nộp đầu tiên, không yêu cầu bổ sung giấy tờ ngoài danh mục "
    "đã được công bố.",
    "Khi tiếp nhận hồ sơ, công chức kiểm tra thành phần hồ sơ, cập nhật thông tin vào hệ thống một cửa "
    "điện tử, cấp giấy tiếp nhận hồ sơ và hẹn trả kết quả, trong đó ghi rõ mã hồ sơ, thời gian nhận và "
    "thời gian trả kết quả.",
    "Các thành phần hồ sơ bằng giấy phải được số hóa trước khi chuyển cho bộ phận chuyên môn giải quyết. "
    "Mỗi trang giấy được quét thành một trang ảnh, giữ đúng thứ tự và màu sắc của bản gốc.",
    "Bản sao điện tử sau khi số hóa được lưu trữ trong kho dữ liệu của cơ quan, gắn với mã hồ sơ tương "
    "ứng, để người dân không phải nộp lại những giấy tờ đã được cơ quan nhà nước tiếp nhận trước đó.",
    "Trường hợp hồ sơ chưa đầy đủ, công chức hướng dẫn bằng văn bản một lần, nêu rõ lý do và những nội "
    "dung cần bổ sung, hoàn thiện; thời hạn giải quyết được tính lại từ ngày nhận đủ hồ sơ hợp lệ.",
    "Hằng quý, văn phòng ủy ban nhân dân xã tổng hợp tỷ lệ hồ sơ được số hóa, tỷ lệ kết quả giải quyết "
    "được số hóa và tỷ lệ hồ sơ giải quyết đúng hạn, báo cáo chủ tịch ủy ban nhân dân xã và cơ quan cấp trên.",
    "Người làm công tác số hóa chịu trách nhiệm về tính chính xác, toàn vẹn của bản điện tử so với bản "
    "giấy, ký số vào bản sao điện tử và ghi rõ thời điểm thực hiện.",
    "Cán bộ, công chức có thái độ hòa nhã, tôn trọng người dân; không được gây phiền hà, sách nhiễu hoặc "
    "yêu cầu tổ chức, cá nhân nộp thêm chi phí ngoài quy định.",
)


def corpus_lines(name: str = "*.txt", folder: Path = CORPUS_DIR) -> list[str]:
    """Paragraphs (one a line, NFC) of the real Vietnamese prose in ../shared/corpus/vi,
    read at test and benchmark time, never copied into the project; [] when absent."""
    files = sorted(folder.glob(name)) if folder.is_dir() else []
    return [nfc(line.strip()) for path in files for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


# Typefaces pages can be drawn in: Liberation Serif (the project's own, Times-metric) by default;
# DejaVu Serif (wider, heavier bold) for held-out sets that must not share the tuned font.
DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")
DEJAVU_STYLES = {"regular": "", "bold": "-Bold", "italic": "-Italic", "bolditalic": "-BoldItalic"}
_typeface = ["liberation"]


@contextmanager
def typeface(name: str):
    """Draw every page rendered inside the block in `name` ("liberation" or "dejavu")."""
    previous, _typeface[0] = _typeface[0], name
    try:
        yield
    finally:
        _typeface[0] = previous


def _font(style: str, px: int) -> ImageFont.FreeTypeFont:
    return _font_in(_typeface[0], style, px)


@lru_cache(maxsize=None)
def _font_in(name: str, style: str, px: int) -> ImageFont.FreeTypeFont:
    if name == "dejavu":
        return ImageFont.truetype(str(DEJAVU_DIR / f"DejaVuSerif{DEJAVU_STYLES[style]}.ttf"), px)
    return ImageFont.truetype(str(font_path(style)), px)


def split_angle(angle: float) -> tuple[int, float]:
    """(orientation, skew): the quarter turn nearest to `angle` and the residual, both CCW."""
    quarters = round(angle / 90.0)
    return int(quarters * 90) % 360, round(angle - quarters * 90.0, 6)


def viet_date(day: date) -> str:
    return f"ngày {day.day:02d} tháng {day.month:02d} năm {day.year}"


class _Sheet:
    """Layout state of one page: a cursor running down the text block, and the words drawn.
    `pt` None = 13 pt on A4 and 11 pt on A5, where a whole receipt must still fit."""

    def __init__(self, paper: str, dpi: int, pt: float | None):
        w_mm, h_mm = PAPER_MM[paper]
        self.dpi, self.pt = dpi, pt or (13.0 if paper == "A4" else 11.0)
        self.image = Image.new("L", (self.mm(w_mm), self.mm(h_mm)), 255)
        self.draw = ImageDraw.Draw(self.image)
        left, top, right, bottom = MARGINS_MM[paper]
        self.left, self.right = self.mm(left), self.image.width - self.mm(right)
        self.top, self.bottom = self.mm(top), self.image.height - self.mm(bottom)
        self.y = self.top
        self.words: list[str] = []
        self.full = False

    def mm(self, value: float) -> int:
        return round(value * self.dpi / 25.4)

    def font(self, style: str = "regular", pt: float | None = None) -> ImageFont.FreeTypeFont:
        return _font(style, round((pt or self.pt) * self.dpi / 72.0))

    def line_height(self, pt: float | None = None) -> int:
        return round((pt or self.pt) * self.dpi / 72.0 * LINE_FACTOR)

    def gap(self, lines: float = 0.5) -> None:
        self.y += round(self.line_height() * lines)

    def room(self, height: int) -> bool:
        if self.y + height > self.bottom:
            self.full = True
        return not self.full

    def line(self, text: str, style: str = "regular", pt: float | None = None, align: str = "center",
             x0: int | None = None, x1: int | None = None, underline: float = 0.0, y: int | None = None) -> int:
        """Draw one line (shrunk to fit its column); return the y below it. Nothing past the page."""
        text = nfc(text)
        x0 = self.left if x0 is None else x0
        x1 = self.right if x1 is None else x1
        pt = pt or self.pt
        font = self.font(style, pt)
        while font.getlength(text) > x1 - x0 and pt > 8:
            pt -= 0.5
            font = self.font(style, pt)
        top = self.y if y is None else y
        height = self.line_height(pt)
        if top + height > self.bottom:
            self.full = True
            return top
        width = font.getlength(text)
        x = {"left": x0, "center": (x0 + x1 - width) / 2, "right": x1 - width}[align]
        baseline = top + font.getmetrics()[0]
        self.draw.text((x, baseline), text, font=font, fill=0, anchor="ls")
        if underline:
            rule = width * underline
            ry = baseline + max(3, self.mm(1.2))
            self.draw.line([(x + (width - rule) / 2, ry), (x + (width + rule) / 2, ry)],
                           fill=0, width=max(1, self.mm(0.2)))
        self.words.extend(text.split())
        if y is None:
            self.y = top + height
        return top + height

    def paragraph(self, text: str, style: str = "regular", pt: float | None = None, indent_mm: float = 10.0,
                  justify: bool = True, x0: int | None = None, x1: int | None = None) -> None:
        """Greedy word wrap, justified except the last line; stops cleanly when the page is full."""
        words = nfc(text).split()
        x0 = self.left if x0 is None else x0
        x1 = self.right if x1 is None else x1
        font = self.font(style, pt)
        height = self.line_height(pt)
        space = font.getlength(" ")
        widths = [font.getlength(w) for w in words]
        start, indent = 0, self.mm(indent_mm)
        while start < len(words):
            if not self.room(height):
                return
            avail = x1 - x0 - indent
            end, used = start + 1, widths[start]
            while end < len(words) and used + space + widths[end] <= avail:
                used += space + widths[end]
                end += 1
            gaps = end - start - 1
            stretch = space + (avail - used) / gaps if justify and gaps and end < len(words) else space
            x, baseline = x0 + indent, self.y + font.getmetrics()[0]
            for i in range(start, end):
                self.draw.text((x, baseline), words[i], font=font, fill=0, anchor="ls")
                x += widths[i] + stretch
            self.words.extend(words[start:end])
            self.y += height
            start, indent = end, 0
        self.y += round(height * 0.25)

    def columns(self, left: list[tuple], right: list[tuple], split: float = 0.42) -> None:
        """Two centred columns side by side (header, signatures); left block's words come first."""
        mid = self.left + round((self.right - self.left) * split)
        start, bottoms = self.y, []
        for lines, (x0, x1) in ((left, (self.left, mid)), (right, (mid, self.right))):
            y = start
            for text, style, *rest in lines:
                opts = rest[0] if rest else {}
                if text:
                    y = self.line(text, style, x0=x0, x1=x1, y=y, **opts)
                else:
                    y += round(self.line_height() * opts.get("lines", 1.0))
            bottoms.append(y)
        self.y = max(bottoms)

    def paste(self, picture: Image.Image, x: int, y: int) -> None:
        self.image.paste(picture, (x, y))


def _official_header(sheet: _Sheet, superior: str, body: str, number: str, place_date: str) -> None:
    left = [(superior, "regular")] if superior else []
    left += [(body, "bold", {"underline": 0.35})]
    sheet.columns(left, [(MOTTO, "bold", {"pt": sheet.pt - 1}), (SLOGAN, "bold", {"underline": 1.0})])
    sheet.gap(0.4)
    sheet.columns([(number, "regular")] if number else [], [(place_date, "italic")])
    sheet.gap(0.8)


def _barcode_image(content: str, fmt: zxingcpp.BarcodeFormat, module_px: int, height_px: int | None = None,
                   **options) -> Image.Image:
    symbol = zxingcpp.create_barcode(content, fmt, **options)
    picture = Image.fromarray(np.asarray(zxingcpp.write_barcode_to_image(symbol, scale=module_px)))
    if height_px:
        picture = picture.resize((picture.width, height_px), Image.NEAREST)
    return picture.convert("L")


def _typed(fields: dict) -> dict:
    """Fields as make_fields gives them, also when read back from JSON (ISO strings)."""
    return {**fields, "received": datetime.fromisoformat(str(fields["received"])),
            "due": date.fromisoformat(str(fields["due"])[:10])}


def qr_content(fields: dict) -> str:
    """Circular 01/2023 receipt QR: dossier code first, then procedure, applicant id, doc, system, time."""
    fields = _typed(fields)
    return "|".join([fields["dossier_code"], fields["procedure_code"], fields["cccd"], RECEIPT_TITLE.capitalize(),
                     QR_SYSTEM_NAME, fields["received"].strftime("%d/%m/%Y %H:%M")])


def make_fields(seed: int, agency_code: str = "000.00.06.H56", received: datetime | None = None,
                sequence: int | None = None) -> dict:
    """A plausible dossier: code AGENCY-YYMMDD-XXXX, procedure, applicant, CCCD, dates."""
    rng = random.Random(seed)
    if received is None:
        received = datetime(2024, 10, 1, 7, 30) + timedelta(days=rng.randrange(0, 85), minutes=rng.randrange(0, 540))
    sequence = rng.randrange(1, 60) if sequence is None else sequence
    code, proc_name, components = PROCEDURES[rng.randrange(len(PROCEDURES))]
    female = rng.random() < 0.5
    born = rng.randrange(1960, 2005)
    name = " ".join([rng.choice(FAMILY), rng.choice(MIDDLE_FEMALE if female else MIDDLE_MALE),
                     rng.choice(GIVEN_FEMALE if female else GIVEN_MALE)])
    century_sex = (0 if born < 2000 else 2) + int(female)
    cccd = f"{PLACE['province_code']}{century_sex}{born % 100:02d}{rng.randrange(10**6):06d}"
    days = rng.choice((1, 3, 5))
    return {
        "dossier_code": f"{agency_code}-{received:%y%m%d}-{sequence:04d}",
        "agency_code": agency_code,
        "procedure_code": code,
        "procedure_name": proc_name,
        "components": list(components),
        "applicant": name,
        "title": "Bà" if female else "Ông",
        "cccd": cccd,
        "address": f"{rng.choice(HAMLETS)}, xã {PLACE['commune']}, huyện {PLACE['district']}, "
                   f"tỉnh {PLACE['province']}",
        "phone": f"09{rng.randrange(10**8):08d}",
        "received": received,
        "due": (received + timedelta(days=days)).date(),
        "days": days,
        "officer": " ".join([rng.choice(FAMILY), rng.choice(MIDDLE_FEMALE), rng.choice(GIVEN_FEMALE)]),
        "chairman": " ".join([rng.choice(FAMILY), rng.choice(MIDDLE_MALE), rng.choice(GIVEN_MALE)]),
        "decision_number": f"{rng.randrange(100, 999)}/QĐ-UBND",
        "sequence": sequence,
    }


def _finish(sheet: _Sheet, kind: str, paper: str, fields: dict | None, codes: dict, color: bool) -> dict:
    image = sheet.image
    if color:
        image = Image.merge("RGB", [image.point(lambda v, t=t: v * t // 255) for t in PAPER_TINT])
    words = [nfc(w) for w in sheet.words]
    plain = {k: (v.isoformat() if isinstance(v, (date, datetime)) else v) for k, v in (fields or {}).items()}
    return {"image": image, "dpi": sheet.dpi, "paper": paper, "kind": kind, "words": words,
            "text": " ".join(words), "codes": codes, "fields": plain, "angle": 0.0, "orientation": 0, "skew": 0.0}


def _commune_header(sheet: _Sheet, number: str, day: date) -> None:
    _official_header(sheet, f"UBND HUYỆN {PLACE['district'].upper()}", f"UBND XÃ {PLACE['commune'].upper()}",
                     number, f"{PLACE['commune']}, {viet_date(day)}")


def render_receipt(fields: dict, dpi: int = 200, paper: str = "A4", pt: float | None = None,
                   color: bool = False) -> dict:
    """Mẫu 01 receipt: dossier code as text, Code 39 barcode of it, and the Circular 01/2023 QR."""
    fields = _typed(fields)
    sheet = _Sheet(paper, dpi, pt)
    pt = sheet.pt
    received, code = fields["received"], fields["dossier_code"]
    _official_header(sheet, f"UBND XÃ {PLACE['commune'].upper()}", "BỘ PHẬN TIẾP NHẬN VÀ TRẢ KẾT QUẢ",
                     f"Số: {fields['sequence']:04d}/TNHS", f"{PLACE['commune']}, {viet_date(received.date())}")
    sheet.line(RECEIPT_TITLE, "bold", pt + 1)
    sheet.line(f"Mã hồ sơ: {code}", "bold")
    module = max(2, round(sheet.mm(0.25)))
    bar = _barcode_image(code, zxingcpp.BarcodeFormat.Code39, module, sheet.mm(9))
    if sheet.room(bar.height + sheet.mm(2)):
        sheet.paste(bar, (sheet.left + sheet.right - bar.width) // 2, sheet.y)
        sheet.y += bar.height + sheet.mm(2)
    qr = _barcode_image(qr_content(fields), zxingcpp.BarcodeFormat.QRCode, 1, ec_level="M")
    modules = qr.width
    qr = qr.resize((modules * max(2, round(sheet.mm(22) / modules)),) * 2, Image.NEAREST)
    body = [
        f"Bộ phận tiếp nhận và trả kết quả Ủy ban nhân dân xã {PLACE['commune']} tiếp nhận hồ sơ của: "
        f"{fields['title']} {fields['applicant']}",
        f"Số CCCD: {fields['cccd']}",
        f"Địa chỉ: {fields['address']}",
        f"Số điện thoại: {fields['phone']}",
        f"Nội dung yêu cầu giải quyết: {fields['procedure_name']} (mã thủ tục {fields['procedure_code']})",
        "1. Thành phần hồ sơ nộp gồm:",
    ]
    body += [f"- {item}: 01 bản chính" for item in fields["components"]]
    due = fields["due"]
    body += [
        "2. Số lượng hồ sơ: 01 bộ",
        f"3. Thời gian giải quyết hồ sơ theo quy định là: {fields['days']:02d} ngày làm việc",
        f"4. Thời gian nhận hồ sơ: {received.hour} giờ {received.minute:02d} phút, {received:%d/%m/%Y}",
        f"5. Thời gian trả kết quả giải quyết hồ sơ: {received.hour} giờ {received.minute:02d} phút, "
        f"{due:%d/%m/%Y}",
        "6. Nhận kết quả tại: Bộ phận tiếp nhận và trả kết quả",
        f"Vào sổ theo dõi hồ sơ, quyển số: 01, số thứ tự: {fields['sequence']:02d}",
    ]
    for text in body:
        sheet.paragraph(text, indent_mm=0, justify=False)
    sheet.gap(0.3)
    sign_top = sheet.y
    sheet.columns([("NGƯỜI NỘP HỒ SƠ", "bold"), ("(Ký và ghi rõ họ tên)", "italic"), ("", "", {"lines": 2.2}),
                   (fields["applicant"], "bold")],
                  [("NGƯỜI TIẾP NHẬN HỒ SƠ", "bold"), ("(Ký và ghi rõ họ tên)", "italic"), ("", "", {"lines": 2.2}),
                   (fields["officer"], "bold")], split=0.5)
    # The QR goes below the signatures (into the bottom margin if need be), else into the left
    # margin beside them, else shrunk to the room left (never under 2 px a module).
    below, room = sheet.y + sheet.mm(2), sheet.image.height - sheet.mm(4) - sheet.y - sheet.mm(2)
    if room >= qr.height:
        sheet.paste(qr, sheet.left, below)
    elif sheet.left >= qr.width + sheet.mm(4):
        sheet.paste(qr, sheet.left - qr.width - sheet.mm(2), sign_top)
    else:
        scale = max(2, room // modules)
        sheet.paste(qr.resize((modules * scale,) * 2, Image.NEAREST), sheet.left, below)
    codes = {"dossier_code": code, "procedure_code": fields["procedure_code"], "cccd": fields["cccd"],
             "qr": qr_content(fields), "barcode": code}
    return _finish(sheet, "receipt", paper, fields, codes, color)


def render_declaration(fields: dict, dpi: int = 200, paper: str = "A4", pt: float | None = None, part: int = 1,
                       parts: int = 1, color: bool = False, stamp_code: bool = False) -> dict:
    """Tờ khai: labelled fields (applicant, CCCD, address, procedure + code, date); part `part` of `parts`.
    `stamp_code`: the officer stamped "Mã hồ sơ: <code>" in the top right corner of page 1 at intake."""
    fields = _typed(fields)
    sheet = _Sheet(paper, dpi, pt)
    pt = sheet.pt
    filed = fields["received"].date()
    stamped = stamp_code and part == 1
    if stamped:
        # In the top margin, above the motto, so the form's own layout is unchanged.
        sheet.line(f"Mã hồ sơ: {fields['dossier_code']}", "bold", pt - 2, align="right",
                   x0=(sheet.left + sheet.right) // 2, y=sheet.mm(MARGINS_MM[paper][1] * 0.35))
    if part == 1:
        sheet.line(MOTTO, "bold", pt - 1)
        sheet.line(SLOGAN, "bold", underline=1.0)
        sheet.gap(1.0)
        sheet.line(f"TỜ KHAI {fields['procedure_name'].upper()}", "bold", pt + 1)
        sheet.line(f"Kính gửi: Ủy ban nhân dân xã {PLACE['commune']}, huyện {PLACE['district']}")
        sheet.gap(0.6)
        labelled = [
            f"Họ, chữ đệm, tên người yêu cầu: {fields['applicant']}",
            f"Số định danh cá nhân (CCCD): {fields['cccd']}",
            f"Nơi cư trú: {fields['address']}",
            f"Số điện thoại liên hệ: {fields['phone']}",
            f"Thủ tục đề nghị giải quyết: {fields['procedure_name']}",
            f"Mã thủ tục: {fields['procedure_code']}",
            f"Ngày nộp hồ sơ: {viet_date(filed)}",
            "Nội dung đề nghị: đề nghị cơ quan có thẩm quyền xem xét, giải quyết yêu cầu nêu trên theo đúng "
            "quy định của pháp luật.",
        ]
    else:
        sheet.line(f"Trang {part}/{parts}", "italic", align="right")
        sheet.gap(0.5)
        labelled = [f"Giấy tờ kèm theo: {', '.join(c.lower() for c in fields['components'])}.",
                    "Số lượng bản sao đề nghị cấp: 02 bản",
                    "Hình thức nhận kết quả: trực tiếp tại Bộ phận tiếp nhận và trả kết quả"]
    for text in labelled:
        sheet.paragraph(text, indent_mm=0, justify=False)
    if part == parts:
        sheet.gap(0.4)
        sheet.paragraph("Tôi cam đoan những nội dung khai trên đây là đúng sự thật và chịu trách nhiệm trước "
                        "pháp luật về cam đoan của mình.")
        sheet.gap(0.4)
        sheet.columns([], [(f"Làm tại xã {PLACE['commune']}, {viet_date(filed)}", "italic"),
                           ("NGƯỜI YÊU CẦU", "bold"), ("(Ký, ghi rõ họ, chữ đệm, tên)", "italic"),
                           ("", "", {"lines": 2.2}), (fields["applicant"], "bold")], split=0.35)
    codes = {"procedure_code": fields["procedure_code"], "cccd": fields["cccd"]} if part == 1 else {}
    if stamped:
        codes["dossier_code"] = fields["dossier_code"]
    return _finish(sheet, "declaration", paper, fields, codes, color)


def _seal(image: Image.Image, centre: tuple[int, int], radius: int) -> None:
    """A red round seal (rings and a star, no text) over the signature, as on real results."""
    draw = ImageDraw.Draw(image)
    x, y = centre
    for r, w in ((radius, max(2, radius // 25)), (round(radius * 0.78), max(1, radius // 40))):
        draw.ellipse([x - r, y - r, x + r, y + r], outline=(200, 30, 40), width=w)
    points = [(x + radius * 0.3 * np.cos(np.pi / 2 + k * 4 * np.pi / 5),
               y - radius * 0.3 * np.sin(np.pi / 2 + k * 4 * np.pi / 5)) for k in range(5)]
    draw.polygon(points, fill=(200, 30, 40))


def render_decision(fields: dict, dpi: int = 200, paper: str = "A4", pt: float | None = None, color: bool = False,
                    cite_code: bool = True) -> dict:
    """QUYẾT ĐỊNH "Số: 892/QĐ-UBND" resolving the dossier (the result); cites the dossier code if asked."""
    fields = _typed(fields)
    sheet = _Sheet(paper, dpi, pt)
    pt = sheet.pt
    finished = fields["due"]
    number = fields["decision_number"]
    _commune_header(sheet, f"Số: {number}", finished)
    sheet.line("QUYẾT ĐỊNH", "bold", pt + 1)
    sheet.line(f"Về việc giải quyết hồ sơ {fields['procedure_name'].lower()}", "bold", underline=0.3)
    sheet.gap(0.5)
    sheet.line(f"CHỦ TỊCH ỦY BAN NHÂN DÂN XÃ {PLACE['commune'].upper()}", "bold")
    sheet.gap(0.3)
    grounds = ["Căn cứ Luật Tổ chức chính quyền địa phương ngày 19 tháng 6 năm 2015;",
               f"Căn cứ hồ sơ đề nghị của {fields['title']} {fields['applicant']}"
               + (f", mã hồ sơ {fields['dossier_code']};" if cite_code else ";"),
               "Theo đề nghị của công chức Tư pháp - Hộ tịch xã."]
    for text in grounds:
        sheet.paragraph(text, "italic")
    sheet.line("QUYẾT ĐỊNH:", "bold")
    articles = [
        f"Điều 1. Chấp thuận yêu cầu {fields['procedure_name'].lower()} của {fields['title']} "
        f"{fields['applicant']}, số CCCD {fields['cccd']}, nơi cư trú: {fields['address']}.",
        "Điều 2. Quyết định này có hiệu lực kể từ ngày ký.",
        f"Điều 3. Công chức Tư pháp - Hộ tịch, Bộ phận tiếp nhận và trả kết quả và {fields['title']} "
        f"{fields['applicant']} chịu trách nhiệm thi hành Quyết định này./.",
    ]
    for text in articles:
        sheet.paragraph(text)
    sheet.gap(0.3)
    sign_top = sheet.y
    sheet.columns([("Nơi nhận:", "bolditalic", {"pt": pt - 1, "align": "left"}),
                   ("- Như Điều 3;", "regular", {"pt": pt - 2, "align": "left"}),
                   ("- Lưu: VT.", "regular", {"pt": pt - 2, "align": "left"})],
                  [("CHỦ TỊCH", "bold"), ("", "", {"lines": 2.6}), (fields["chairman"], "bold")], split=0.45)
    codes = {"number_symbol": number, "cccd": fields["cccd"]}
    if cite_code:
        codes["dossier_code"] = fields["dossier_code"]
    page = _finish(sheet, "decision", paper, fields, codes, color)
    if color:
        mid = sheet.left + round((sheet.right - sheet.left) * 0.725)
        _seal(page["image"], (mid - sheet.mm(20), sign_top + sheet.mm(14)), sheet.mm(16))
    return page


def render_prose(paragraphs: list[str] | tuple[str, ...] = SAMPLE_PARAGRAPHS, dpi: int = 200, paper: str = "A4",
                 pt: float | None = None, title: str = "THÔNG BÁO", subtitle: str = "Về việc tiếp nhận và số hóa hồ sơ",
                 number: str = "Số: 15/TB-UBND", day: date = date(2024, 12, 3), header: bool = True,
                 color: bool = False) -> dict:
    """An official notice whose body is `paragraphs`, cut at the last line that fits."""
    sheet = _Sheet(paper, dpi, pt or (14.0 if paper == "A4" else 12.0))
    if header:
        _commune_header(sheet, number, day)
        sheet.line(title, "bold")
        if subtitle:
            sheet.line(subtitle, "bold", underline=0.3)
        sheet.gap(0.6)
    for text in paragraphs:
        sheet.paragraph(text)
        if sheet.full:
            break
    return _finish(sheet, "prose", paper, None, {}, color)


def render_page(kind: str, fields: dict | None = None, paragraphs=None, **options) -> dict:
    """Dispatch on kind: receipt, declaration, decision, prose (fields default to make_fields(0))."""
    if kind == "prose":
        return render_prose(paragraphs or SAMPLE_PARAGRAPHS, **options)
    renderer = {"receipt": render_receipt, "declaration": render_declaration, "decision": render_decision}[kind]
    return renderer(fields or make_fields(0), **options)


# ---------------------------------------------------------------- degradations

def rotate(image: Image.Image, angle: float, fill: int = 255) -> Image.Image:
    """Turn the content CCW by `angle` degrees about the centre, canvas expanded; quarter turns exact."""
    orientation, skew = split_angle(angle)
    turns = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
    if orientation:
        image = image.transpose(turns[orientation])
    if not skew:
        return image
    # OpenCV: positive angle = counter-clockwise on screen, like Pillow, and ~10x faster at 300 dpi.
    width, height = image.size
    rad = np.deg2rad(skew)
    new_w = int(np.ceil(width * abs(np.cos(rad)) + height * abs(np.sin(rad))))
    new_h = int(np.ceil(width * abs(np.sin(rad)) + height * abs(np.cos(rad))))
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), skew, 1.0)
    matrix[0, 2] += (new_w - width) / 2
    matrix[1, 2] += (new_h - height) / 2
    border = (fill,) * 3 if image.mode == "RGB" else fill
    turned = cv2.warpAffine(np.asarray(image), matrix, (new_w, new_h), flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=border)
    return Image.fromarray(turned)


def _dark_border(pixels: np.ndarray, sides: str, dpi: int, rng: np.random.Generator) -> None:
    """Scanner-lid bands: dark grey, slightly textured, with a wavy inner edge, on the given sides."""
    height, width = pixels.shape[:2]
    for side in sides:
        depth = int(rng.uniform(3, 12) * dpi / 25.4)
        along = width if side in "tb" else height
        # A random walk, smoothed: the lid's shadow edge wanders a little but is not torn.
        walk = np.convolve(np.cumsum(rng.normal(0, 0.4, along)), np.ones(31) / 31, mode="same")
        edge = (depth + walk.clip(-depth / 3, depth / 3)).astype(int).clip(1, depth * 2)
        shade = rng.uniform(15, 70)
        idx = np.arange(depth * 2)[None, :]
        band = (idx < edge[:, None]).astype(np.float32)  # along x depth
        texture = shade + rng.normal(0, 8, band.shape)
        region = {"l": (slice(None), slice(0, depth * 2)), "r": (slice(None), slice(width - depth * 2, width)),
                  "t": (slice(0, depth * 2), slice(None)), "b": (slice(height - depth * 2, height), slice(None))}[side]
        if side == "t":
            band, texture = band.T, texture.T
        elif side == "b":
            band, texture = band.T[::-1], texture.T[::-1]
        elif side == "r":
            band, texture = band[:, ::-1], texture[:, ::-1]
        target = pixels[region]
        if target.ndim == 3:
            band, texture = band[..., None], texture[..., None]
        pixels[region] = target * (1 - band) + texture * band


def degrade(image: Image.Image, angle: float = 0.0, border: str = "", illumination: float = 0.0,
            blur: float = 0.0, noise: float = 0.0, speckle: float = 0.0, jpeg_quality: int | None = None,
            dpi: int = 200, seed: int = 0) -> Image.Image:
    """Scanner damage in the order it happens: paper turned on the glass, lid borders, uneven light,
    optics blur (radius px), sensor noise (sigma, grey levels), salt-and-pepper speckle (share of
    pixels), JPEG compression. `border` names sides among "ltrb"; `dpi` sizes the bands."""
    rng = np.random.default_rng(seed)
    image = rotate(image, angle)
    pixels = np.asarray(image, dtype=np.float32).copy()
    if border:
        _dark_border(pixels, border, dpi, rng)
    if illumination:
        height, width = pixels.shape[:2]
        theta = rng.uniform(0, 2 * np.pi)
        # A smooth light fall-off towards one side, computed coarse and scaled up (it is smooth).
        gx = np.linspace(-1, 1, 64, dtype=np.float32)[None, :] * np.cos(theta)
        gy = np.linspace(-1, 1, 64, dtype=np.float32)[:, None] * np.sin(theta)
        coarse = 1.0 - illumination * ((gx + gy + 1.5) / 3.0).clip(0, 1) ** 2
        field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
        pixels *= field[..., None] if pixels.ndim == 3 else field
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    if noise or speckle:
        pixels = np.asarray(image, dtype=np.float32).copy()
        if noise:
            pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * noise
        if speckle:
            hits = rng.random(pixels.shape[:2]) < speckle
            values = np.where(rng.random(int(hits.sum())) < 0.5, 0.0, 255.0)
            pixels[hits] = values[:, None] if pixels.ndim == 3 else values
        image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    if jpeg_quality:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=jpeg_quality)
        image = Image.open(io.BytesIO(buffer.getvalue()))
        image.load()
        image.info.clear()
    return image


def scan(page: dict, angle: float = 0.0, seed: int = 0, **damage) -> dict:
    """A copy of `page` degraded by `degrade` with its geometry truth set (orientation + skew = angle)."""
    orientation, skew = split_angle(angle)
    image = degrade(page["image"], angle=angle, dpi=page["dpi"], seed=seed, **damage)
    return {**page, "image": image, "angle": float(angle), "orientation": orientation, "skew": skew}


# ---------------------------------------------------------------- writers

def _clean(image: Image.Image) -> Image.Image:
    """A copy without inherited metadata, so 'no dpi' really writes none."""
    image = image.copy()
    image.info = {}
    return image


def write_pdf(path: str | Path, images: list[Image.Image], dpi: int | None = 200, quality: int = 85,
              timestamp: float | None = None) -> Path:
    """Image-only PDF, one page per image. Page size = pixels / dpi; dpi None leaves Pillow's 72,
    as tools that do not know the resolution write it (the page comes out oversized).
    A fixed `timestamp` (epoch seconds) makes the file byte-for-byte reproducible."""
    path = Path(path)
    first, *rest = [_clean(im) for im in images]
    dates = {}
    if timestamp is not None:
        dates = {"creationDate": time.gmtime(timestamp), "modDate": time.gmtime(timestamp)}
    first.save(path, "PDF", save_all=True, append_images=rest, resolution=float(dpi or 72), quality=quality,
               **dates)
    return path


def write_tiff(path: str | Path, images: list[Image.Image], dpi: int | None = 200,
               compression: str = "tiff_deflate") -> Path:
    path = Path(path)
    first, *rest = [_clean(im) for im in images]
    options = {"compression": compression, "save_all": True, "append_images": rest}
    if dpi:
        options["dpi"] = (dpi, dpi)
    first.save(path, "TIFF", **options)
    return path


def write_image(path: str | Path, image: Image.Image, dpi: int | None = 200, quality: int = 85) -> Path:
    """Single-page JPEG/PNG (or anything Pillow writes, by suffix), with or without dpi metadata."""
    path = Path(path)
    options = {"dpi": (dpi, dpi)} if dpi else {}
    if path.suffix.lower() in (".jpg", ".jpeg"):
        options["quality"] = quality
    elif path.suffix.lower() == ".png":
        options["optimize"] = False
        options["compress_level"] = 9
    _clean(image).save(path, **options)
    return path


def write_pages(path: str | Path, images: list[Image.Image], dpi: int | None = 200, quality: int = 85,
                timestamp: float | None = None) -> Path:
    """Write by suffix: .pdf and .tif/.tiff take many pages, other formats exactly one."""
    suffix = Path(path).suffix.lower()
    if suffix == ".pdf":
        return write_pdf(path, images, dpi, quality, timestamp)
    if suffix in (".tif", ".tiff"):
        return write_tiff(path, images, dpi)
    if len(images) != 1:
        raise ValueError(f"{suffix} holds one page, got {len(images)}")
    return write_image(path, images[0], dpi, quality)


REGISTRY_ORDER = ("code", "procedure_code", "procedure_name", "applicant", "cccd", "address", "received", "due",
                  "finished", "status", "officer")


def write_registry(path: str | Path, dossiers: list[dict], headers: dict[str, str]) -> Path:
    """The dossier list as the one-stop software exports it: CSV, UTF-8 with BOM (Excel), dd/mm/yyyy.
    `dossiers` are make_fields() dicts with "status" and "finished" (a date or None) added;
    `headers` maps each field of REGISTRY_ORDER to its column name."""
    path = Path(path)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([headers[key] for key in REGISTRY_ORDER])
        for d in dossiers:
            d = _typed(d)
            finished = d.get("finished")
            writer.writerow([d["dossier_code"], d["procedure_code"], d["procedure_name"], d["applicant"], d["cccd"],
                             d["address"], f"{d['received']:%d/%m/%Y}", f"{d['due']:%d/%m/%Y}",
                             f"{finished:%d/%m/%Y}" if finished else "", d["status"], d["officer"]])
    return path
