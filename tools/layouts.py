"""Receipt and result layouts of several vendors, for measuring linking on papers its rules were
not written against.

Each generator is `render(fields, rng, dpi) -> page` (a tools.synth page dict: image, words,
codes, fields), drawing a dossier's paper as one vendor prints it: its own title, its own labels,
its own signature block, its own QR encoding (Circular 01/2023 Art. 26 leaves that to the
vendor), its own way of printing the dossier code. `rng` varies what a vendor varies between
papers (which label spelling, whether the date is written out, whether a symbol is printed).

SPLITS: the layouts linking is developed on ("dev") and the ones it is reported on ("held_out").
The held-out generators were written first, from the issue's description of real papers, and
their output is not looked at while the rules are tuned.
"""
from __future__ import annotations

import json
import random
from datetime import date, datetime

import zxingcpp
from PIL import Image

from tools import synth
from tools.synth import MOTTO, PLACE, SLOGAN, _barcode_image, _finish, _Sheet, _typed


def _qr(sheet: _Sheet, content: str, size_mm: float = 24.0) -> Image.Image:
    qr = _barcode_image(content, zxingcpp.BarcodeFormat.QRCode, 1, ec_level="M")
    modules = qr.width
    return qr.resize((modules * max(2, round(sheet.mm(size_mm) / modules)),) * 2, Image.NEAREST)


def _spelled_date(day: date, pad: bool) -> str:
    return f"ngày {day.day:02d} tháng {day.month:02d} năm {day.year}" if pad else \
        f"ngày {day.day} tháng {day.month} năm {day.year}"


def _clock_date(moment: datetime, day: date | None = None) -> str:
    """'14 giờ 05 phút, ngày 12/08/2024' (the time of `moment`, the date of `day` or `moment`)."""
    day = day or moment.date()
    return f"{moment.hour:02d} giờ {moment.minute:02d} phút, ngày {day:%d/%m/%Y}"


def _header_beside(sheet: _Sheet, left: list[tuple[str, str]], x0: int, split: float = 0.45) -> None:
    """An official header whose left column starts at x0 (a QR code stands left of it)."""
    mid = sheet.left + round((sheet.right - sheet.left) * split)
    top = y = sheet.y
    for text, style in left:
        y = sheet.line(text, style, x0=x0, x1=mid, y=y)
    right = sheet.line(MOTTO, "bold", sheet.pt - 2, x0=mid, x1=sheet.right, y=top)
    right = sheet.line(SLOGAN, "bold", x0=mid, x1=sheet.right, y=right, underline=1.0)
    sheet.y = max(y, right)


def _signature_row(sheet: _Sheet, blocks: list[list[tuple[str, str]]], gap_lines: float = 2.4) -> None:
    """n signature blocks side by side on the same lines; each block: title lines, a note, then the
    name under a blank space for the signature. Words are recorded block by block."""
    width = (sheet.right - sheet.left) / len(blocks)
    start, bottoms = sheet.y, []
    for k, block in enumerate(blocks):
        x0, x1 = round(sheet.left + k * width), round(sheet.left + (k + 1) * width)
        y = start
        for text, style in block:
            if text:
                y = sheet.line(text, style, sheet.pt - 1, x0=x0, x1=x1, y=y)
            else:
                y += round(sheet.line_height() * gap_lines)
        bottoms.append(y)
    sheet.y = max(bottoms)


# ---------------------------------------------------------------- held-out layouts (written first)

def render_hen_tra(fields: dict, rng: random.Random, dpi: int = 200) -> dict:
    """"PHIẾU TIẾP NHẬN VÀ HẸN TRẢ KẾT QUẢ": QR top left with `key=value;` camel-cased names,
    "Tên tổ chức/cá nhân", "Số định danh cá nhân", times as "14 giờ 05 phút, ngày 12/08/2024",
    a three-column signature block (applicant, officer, head of the unit)."""
    fields = _typed(fields)
    sheet = _Sheet("A4", dpi, 12.5)
    code, received, due = fields["dossier_code"], fields["received"], fields["due"]
    payload = ";".join([f"MaHoSo={code}", f"MaTTHC={fields['procedure_code']}", f"SoDinhDanh={fields['cccd']}",
                        "TenGiayTo=Phieu tiep nhan va hen tra ket qua", "HeThong=HTTTGQTTHC",
                        f"ThoiGian={received:%Y%m%d%H%M%S}", f"NgayHenTra={due:%Y%m%d}"])
    with_qr = rng.random() < 0.8
    qr = _qr(sheet, payload, 22.0) if with_qr else None
    x0 = sheet.left
    if qr is not None:
        sheet.paste(qr, sheet.left, sheet.top)
        x0 = sheet.left + qr.width + sheet.mm(3)
    _header_beside(sheet, [(f"UBND XÃ {PLACE['commune'].upper()}", "regular"),
                           ("BỘ PHẬN MỘT CỬA", "bold")], x0)
    if qr is not None:
        sheet.y = max(sheet.y, sheet.top + qr.height)
    sheet.gap(0.6)
    sheet.line("PHIẾU TIẾP NHẬN VÀ HẸN TRẢ KẾT QUẢ", "bold", sheet.pt + 1.5)
    sheet.line(f"Mã hồ sơ: {code}", "bold")
    sheet.gap(0.5)
    label_person = rng.choice(("Tên tổ chức/cá nhân", "Tên tổ chức, cá nhân"))
    rows = [
        f"{label_person}: {fields['applicant']}",
        f"Số định danh cá nhân: {fields['cccd']}",
        f"Địa chỉ: {fields['address']}",
        f"Số điện thoại: {fields['phone']}   Email: không có",
        f"Thủ tục hành chính: {fields['procedure_name']}",
        f"Mã thủ tục hành chính: {fields['procedure_code']}",
        "Hình thức nộp: trực tiếp",
        f"Thời gian tiếp nhận: {_clock_date(received)}",
        f"Thời gian hẹn trả kết quả: {_clock_date(received, due)}",
        "Thành phần hồ sơ:",
    ]
    rows += [f"{i}. {item} (bản chính: 1, bản sao: 0)" for i, item in enumerate(fields["components"], 1)]
    rows += ["Khi đến nhận kết quả, tổ chức/cá nhân mang theo phiếu này và giấy tờ tùy thân."]
    for text in rows:
        sheet.paragraph(text, indent_mm=0, justify=False)
    sheet.gap(0.4)
    note = rng.choice(("(Ký, ghi rõ họ tên)", "(Ký và ghi rõ họ tên)"))
    _signature_row(sheet, [
        [("NGƯỜI NỘP HỒ SƠ", "bold"), (note, "italic"), ("", ""), (fields["applicant"], "bold")],
        [("CÔNG CHỨC TIẾP NHẬN", "bold"), (note, "italic"), ("", ""), (fields["officer"], "bold")],
        [("TRƯỞNG BỘ PHẬN", "bold"), ("(Ký tên, đóng dấu)", "italic"), ("", ""), (fields["chairman"], "bold")],
    ])
    codes = {"dossier_code": code, "cccd": fields["cccd"], **({"qr": payload} if with_qr else {})}
    return _finish(sheet, "receipt", "A4", fields, codes, False)


def _spaced(code: str) -> str:
    """The code as some systems print it: '000.20.25.H55 - 240812 - 0003'."""
    return " - ".join(code.rsplit("-", 2))


def render_bien_nhan(fields: dict, rng: random.Random, dpi: int = 200) -> dict:
    """"GIẤY BIÊN NHẬN HỒ SƠ": "Mã biên nhận hồ sơ" with the code spaced around its dashes, often
    a Code 128 barcode, "Người nộp", "CMND/CCCD số", a written-out received date, and the two
    signatures side by side on the same lines."""
    fields = _typed(fields)
    sheet = _Sheet("A4", dpi, 13.0)
    code, received, due = fields["dossier_code"], fields["received"], fields["due"]
    sheet.columns([(f"UBND XÃ {PLACE['commune'].upper()}", "regular"),
                   ("BỘ PHẬN TIẾP NHẬN VÀ TRẢ KẾT QUẢ", "bold")],
                  [(MOTTO, "bold", {"pt": sheet.pt - 1}), (SLOGAN, "bold", {"underline": 1.0})])
    sheet.gap(1.0)
    sheet.line("GIẤY BIÊN NHẬN HỒ SƠ", "bold", sheet.pt + 2)
    sheet.line(f"Mã biên nhận hồ sơ: {_spaced(code)}", "bold")
    printed = {"dossier_code": code, "cccd": fields["cccd"]}
    if rng.random() < 0.6:
        bar = _barcode_image(code, zxingcpp.BarcodeFormat.Code128, max(2, round(sheet.mm(0.3))), sheet.mm(10))
        sheet.paste(bar, (sheet.left + sheet.right - bar.width) // 2, sheet.y + sheet.mm(1))
        sheet.y += bar.height + sheet.mm(3)
        printed["barcode"] = code
    sheet.gap(0.4)
    sheet.line(f"{PLACE['commune']}, {_spelled_date(received.date(), pad=False)}", "italic", align="right")
    person = f"{fields['title']} {fields['applicant']}" if rng.random() < 0.5 else fields["applicant"]
    rows = [
        f"Người nộp: {person}",
        f"CMND/CCCD số: {fields['cccd']}   Điện thoại: {fields['phone']}",
        f"Địa chỉ thường trú: {fields['address']}",
        "Lĩnh vực: Hộ tịch",
        f"Tên thủ tục: {fields['procedure_name']}",
        f"Ngày nhận: {_spelled_date(received.date(), pad=rng.random() < 0.5)}",
        f"Ngày hẹn trả: {due:%d/%m/%Y}",
        "Số bộ hồ sơ: 01. Giấy tờ đã nhận:",
    ]
    rows += [f"- {item}" for item in fields["components"]]
    for text in rows:
        sheet.paragraph(text, indent_mm=0, justify=False)
    sheet.gap(0.5)
    _signature_row(sheet, [
        [("NGƯỜI NỘP HỒ SƠ", "bold"), ("(Ký, ghi rõ họ tên)", "italic"), ("", ""), (fields["applicant"], "bold")],
        [("NGƯỜI TIẾP NHẬN HỒ SƠ", "bold"), ("(Ký, ghi rõ họ tên)", "italic"), ("", ""),
         (fields["officer"], "bold")],
    ])
    return _finish(sheet, "receipt", "A4", fields, printed, False)


RESULT_TITLES = {
    "1.001193": "TRÍCH LỤC KHAI SINH",
    "1.000894": "GIẤY CHỨNG NHẬN KẾT HÔN",
    "1.000656": "TRÍCH LỤC KHAI TỬ",
    "2.000815": "GIẤY XÁC NHẬN CHỨNG THỰC",
    "1.004227": "TRÍCH LỤC HỘ TỊCH (BẢN SAO)",
}


def render_ket_qua(fields: dict, rng: random.Random, dpi: int = 200) -> dict:
    """A result paper: QR top left holding several fields as JSON with Vietnamese names spelled out
    (with or without marks), the code printed after "Mã HS:" and sometimes broken over two lines,
    "Chủ hồ sơ", "Căn cước công dân số", a signature block "TM. ỦY BAN NHÂN DÂN / CHỦ TỊCH"."""
    fields = _typed(fields)
    sheet = _Sheet("A4", dpi, 13.0)
    code, received, due = fields["dossier_code"], fields["received"], fields["due"]
    title = RESULT_TITLES.get(fields["procedure_code"], "GIẤY XÁC NHẬN")
    marks = rng.random() < 0.5
    keys = (("Mã hồ sơ", "Mã thủ tục", "Số định danh", "Tên giấy tờ", "Hệ thống", "Thời gian", "Hiệu lực")
            if marks else ("ma_ho_so", "ma_thu_tuc", "so_dinh_danh", "ten_giay_to", "he_thong", "thoi_gian",
                           "hieu_luc"))
    values = (code, fields["procedure_code"], fields["cccd"], title.capitalize(), "Cổng dịch vụ công tỉnh",
              f"{due:%d/%m/%Y} 16:30", "Không thời hạn")
    payload = json.dumps(dict(zip(keys, values)), ensure_ascii=rng.random() < 0.3)
    qr = _qr(sheet, payload, 25.0)
    sheet.paste(qr, sheet.left, sheet.top)
    _header_beside(sheet, [(f"ỦY BAN NHÂN DÂN XÃ {PLACE['commune'].upper()}", "bold")],
                   sheet.left + qr.width + sheet.mm(3))
    sheet.y = max(sheet.y, sheet.top + qr.height)
    sheet.gap(0.5)
    sheet.line(f"Số: {fields['decision_number']}", align="left")
    sheet.gap(0.5)
    sheet.line(title, "bold", sheet.pt + 2)
    sheet.gap(0.4)
    split = rng.random() < 0.5
    if split:
        head, tail = code.rsplit("-", 1)
        sheet.line(f"Mã HS: {head}-", align="left")
        sheet.line(f"{tail}", align="left")
    else:
        sheet.line(f"Mã HS: {code}", align="left")
    rows = [
        f"Chủ hồ sơ: {fields['applicant']}",
        f"Căn cước công dân số: {fields['cccd']}",
        f"Nơi cư trú: {fields['address']}",
        f"Nội dung: {fields['procedure_name']} theo hồ sơ tiếp nhận {_clock_date(received)}.",
        f"Ngày trả kết quả: {due:%d/%m/%Y}",
    ]
    for text in rows:
        sheet.paragraph(text, indent_mm=0, justify=False)
    sheet.gap(0.5)
    sheet.line(f"{PLACE['commune']}, {_spelled_date(due, pad=True)}", "italic", align="right")
    sheet.gap(0.3)
    sheet.columns([("Nơi nhận:", "bolditalic"), ("- Người yêu cầu;", "regular"), ("- Lưu: VT.", "regular")],
                  [("TM. ỦY BAN NHÂN DÂN", "bold"), ("CHỦ TỊCH", "bold"), ("(Ký tên, đóng dấu)", "italic"),
                   ("", "", {"lines": 2.4}), (fields["chairman"], "bold")], split=0.45)
    return _finish(sheet, "result", "A4", fields, {"dossier_code": code, "cccd": fields["cccd"], "qr": payload},
                   False)


# ---------------------------------------------------------------- development layouts

def render_mau01(fields: dict, rng: random.Random, dpi: int = 200) -> dict:
    """The project's own Mẫu 01 receipt (tools.synth.render_receipt): positional `|` QR, Code 39."""
    return synth.render_receipt(fields, dpi=dpi)


def render_tiep_nhan(fields: dict, rng: random.Random, dpi: int = 200) -> dict:
    """"PHIẾU TIẾP NHẬN HỒ SƠ": `key:value|` QR with unmarked spelled-out names, "Họ và tên người
    nộp", "Số CCCD", "Mã số hồ sơ" with spaces around its dots, written-out dates, and the two
    signature titles on one line with the names under them."""
    fields = _typed(fields)
    sheet = _Sheet("A4", dpi, 13.0)
    code, received, due = fields["dossier_code"], fields["received"], fields["due"]
    payload = "|".join([f"Ma ho so:{code}", f"Ma TTHC:{fields['procedure_code']}", f"So CCCD:{fields['cccd']}",
                        "Ten giay to:Phieu tiep nhan ho so", f"Thoi gian:{received:%d/%m/%Y %H:%M}",
                        f"Ngay hen tra:{due:%d/%m/%Y}"])
    sheet.columns([(f"UBND XÃ {PLACE['commune'].upper()}", "bold", {"underline": 0.4})],
                  [(MOTTO, "bold", {"pt": sheet.pt - 1}), (SLOGAN, "bold", {"underline": 1.0})])
    sheet.gap(0.8)
    sheet.line("PHIẾU TIẾP NHẬN HỒ SƠ", "bold", sheet.pt + 2)
    agency, day, number = code.rsplit("-", 2)
    printed = rng.choice((code, f"{agency.replace('.', ' . ')}-{day}-{number}", f"{agency} -{day}- {number}"))
    sheet.line(f"Mã số hồ sơ: {printed}", "bold")
    sheet.gap(0.4)
    rows = [
        f"Họ và tên người nộp: {fields['applicant']}",
        f"Số CCCD: {fields['cccd']}",
        f"Địa chỉ liên hệ: {fields['address']}",
        f"Tên thủ tục: {fields['procedure_name']} - Mã TTHC: {fields['procedure_code']}",
        f"Ngày tiếp nhận: {_spelled_date(received.date(), pad=rng.random() < 0.5)}",
        f"Ngày hẹn trả kết quả: {_spelled_date(due, pad=rng.random() < 0.5)}",
    ]
    for text in rows:
        sheet.paragraph(text, indent_mm=0, justify=False)
    sheet.gap(0.5)
    _signature_row(sheet, [
        [("NGƯỜI NỘP HỒ SƠ", "bold"), ("(Ký, ghi rõ họ tên)", "italic"), ("", ""), (fields["applicant"], "bold")],
        [("NGƯỜI TIẾP NHẬN", "bold"), ("(Ký, ghi rõ họ tên)", "italic"), ("", ""), (fields["officer"], "bold")],
    ])
    qr = _qr(sheet, payload, 22.0)
    if sheet.y + sheet.mm(3) + qr.height < sheet.image.height - sheet.mm(5):
        sheet.paste(qr, sheet.left, sheet.y + sheet.mm(3))
    return _finish(sheet, "receipt", "A4", fields, {"dossier_code": code, "cccd": fields["cccd"], "qr": payload},
                   False)


def render_trich_luc(fields: dict, rng: random.Random, dpi: int = 200) -> dict:
    """A result with a camel-cased JSON QR (MaHoSo, MaTTHC, SoDinhDanh, TenGiayTo, ThoiGian),
    "Người yêu cầu", "Giấy tờ tùy thân", the code after "Mã hồ sơ:" in the body, and the
    chairman's signature block."""
    fields = _typed(fields)
    sheet = _Sheet("A4", dpi, 13.0)
    code, due = fields["dossier_code"], fields["due"]
    title = RESULT_TITLES.get(fields["procedure_code"], "GIẤY XÁC NHẬN")
    payload = json.dumps({"MaHoSo": code, "MaTTHC": fields["procedure_code"], "SoDinhDanh": fields["cccd"],
                          "TenGiayTo": title.title(), "ThoiGian": f"{due:%Y%m%d}153000"})
    qr = _qr(sheet, payload, 24.0)
    sheet.paste(qr, sheet.left, sheet.top)
    _header_beside(sheet, [("UBND HUYỆN " + PLACE["district"].upper(), "regular"),
                           (f"UBND XÃ {PLACE['commune'].upper()}", "bold")], sheet.left + qr.width + sheet.mm(3))
    sheet.y = max(sheet.y, sheet.top + qr.height)
    sheet.gap(0.8)
    sheet.line(title, "bold", sheet.pt + 2)
    sheet.gap(0.4)
    rows = [
        f"Người yêu cầu: {fields['title']} {fields['applicant']}",
        f"Giấy tờ tùy thân: CCCD số {fields['cccd']}",
        f"Mã hồ sơ: {code}",
        f"Nội dung: {fields['procedure_name']}",
        f"Ngày cấp: {due:%d/%m/%Y}",
    ]
    for text in rows:
        sheet.paragraph(text, indent_mm=0, justify=False)
    sheet.gap(0.6)
    sheet.columns([], [("CHỦ TỊCH", "bold"), ("(Ký, ghi rõ họ tên, đóng dấu)", "italic"),
                       ("", "", {"lines": 2.4}), (fields["chairman"], "bold")], split=0.5)
    return _finish(sheet, "result", "A4", fields, {"dossier_code": code, "cccd": fields["cccd"], "qr": payload},
                   False)


LAYOUTS = {
    "mau01": render_mau01,
    "tiep-nhan": render_tiep_nhan,
    "trich-luc": render_trich_luc,
    "hen-tra": render_hen_tra,
    "bien-nhan": render_bien_nhan,
    "ket-qua": render_ket_qua,
}
SPLITS = {"dev": ("mau01", "tiep-nhan", "trich-luc"), "held_out": ("hen-tra", "bien-nhan", "ket-qua")}
