"""Extraction of dossier fields from text and barcodes; barcode decoding on real images."""
from __future__ import annotations

import json

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from tools import synth
from digitize import orient
from digitize.barcodes import decode_barcodes
from digitize.codes import find_codes, find_exact_codes, is_well_formed
from digitize.extract import (classify, extract_page, filename_codes, find_applicant, find_cccd, find_dates,
                              find_number, is_signature_line, merge_fields, qr_fields, valid_cccd)
from digitize.privacy import mask_cccd
from digitize.vntext import fold

CODE = "000.00.06.H56-231027-0361"
RECEIPT = """UBND XÃ HÒA BÌNH
BỘ PHẬN TIẾP NHẬN VÀ TRẢ KẾT QUẢ
Số: 0361/TNHS
CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM
Hòa Bình, ngày 27 tháng 10 năm 2023
GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ
Mã hồ sơ: {code}
Bộ phận tiếp nhận và trả kết quả Ủy ban nhân dân xã Hòa Bình tiếp nhận hồ sơ của: Bà Nguyễn
Thị Minh Khai
Số CCCD: 001195012345
Nội dung yêu cầu giải quyết: Đăng ký khai sinh (mã thủ tục 1.001193.000.00.00.H56)
4. Thời gian nhận hồ sơ: 9 giờ 32 phút, ngày 27/10/2023
5. Thời gian trả kết quả giải quyết hồ sơ: 9 giờ 32 phút, 30/10/2023
"""


@pytest.mark.parametrize("reading", [
    CODE,
    "000.00.O6.H56-23lO27-O361",          # O for 0, l for 1
    "000.00.06.H56-23IO27-0S6I",          # I for 1, S for 5... S stands for a 5 here
    "000.0006.H56--231027-0361",          # a dot dropped, a dash doubled
    "000 .00.06.H56 - 2310 27-0361",      # spaces inside
    "000.00.06.H56–231027—0361",          # typographic dashes
])
def test_damaged_codes_are_repaired_and_flagged(reading):
    found = find_codes(f"Mã hồ sơ: {reading}; tiếp theo")
    expected = CODE if "S6I" not in reading else "000.00.06.H56-231027-0561"
    assert [f["code"] for f in found] == [expected]
    assert found[0]["exact"] is (reading == CODE)


def test_short_local_form_and_letter_slot_lookalike():
    assert [f["code"] for f in find_codes("số H56.14-240823-0001.")] == ["H56.14-240823-0001"]
    assert [f["code"] for f in find_codes("000.00.06.856-231027-0361")] == ["000.00.06.B56-231027-0361"]
    assert is_well_formed("H56.14-240823-0001") and not is_well_formed("H56-240823-0001")


def test_what_is_not_a_code():
    text = ("CCCD 001195012345, ngày 27/10/2023, số tiền 1.000.000 đồng, "
            "mã 000.00.06.H56-231327-0361 (tháng 13), 000.00.06.H56-231027-036")
    assert find_codes(text) == []


def test_barcode_payloads_are_taken_exactly():
    qr = f"{CODE}|1.001193|001195012345|Giấy tiếp nhận hồ sơ|Hệ thống|27/10/2023 09:32"
    assert find_exact_codes(qr) == [CODE]
    assert find_exact_codes("000.00.O6.H56-231027-0361") == []


def test_receipt_fields():
    page = extract_page(RECEIPT.format(code=CODE), [{"text": CODE, "kind": "barcode"}])
    assert page["kind"] == "receipt"
    assert [(c["source"], c["code"]) for c in page["codes"]] == [("barcode", CODE), ("text", CODE)]
    assert page["applicant"] == "Nguyễn Thị Minh Khai"          # the name wraps onto the next line
    assert page["cccd"] == "001195012345"
    assert page["procedure_code"] == "1.001193.000.00.00.H56"
    assert page["procedure_name"] == "Đăng ký khai sinh"
    assert page["number"] == "0361/TNHS"
    assert page["received_date"] == "2023-10-27" and page["due_date"] == "2023-10-30"
    assert page["issue_date"] == "2023-10-27"
    assert page["title"] == "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ"


def test_dates_in_vietnamese_forms():
    found = find_dates("Hà Nội, ngày 03 tháng 12 năm 2024\nlúc 9 giờ 32 phút, ngày 27/10/2023\n"
                       "Hẹn trả: 1/2/2024\nngày 31/02/2024")
    assert found == [{"date": "2024-12-03", "time": None, "role": "issued"},
                     {"date": "2023-10-27", "time": "09:32", "role": None},
                     {"date": "2024-02-01", "time": None, "role": "due"}]


def test_number_symbol_and_kinds():
    assert find_number("Số: 892/QĐ-UBND\nHòa Bình, ngày 03 tháng 12 năm 2024") == "892/QĐ-UBND"
    assert find_number("Số: 12/2024/TT-BNV") == "12/2024/TT-BNV"
    assert classify("QUYẾT ĐỊNH\nVề việc công nhận kết hôn\nCăn cứ tờ khai của ông") == "result"
    assert classify("TỜ KHAI ĐĂNG KÝ KHAI SINH\n...đề nghị cấp Giấy khai sinh") == "declaration"
    assert classify("GIẤY KHAI SINH\nChứng thực bản sao đúng với bản chính") == "certified_copy"
    assert classify("Lời nói đầu về công tác văn thư") == "other"
    assert classify("", [{"text": "DIGITIZE-COVER|" + CODE, "kind": "qr"}]) == "cover_sheet"


def test_cccd_shape():
    assert valid_cccd("001195012345") and valid_cccd("096305000001")
    assert not valid_cccd("097195012345")       # no province 097
    assert not valid_cccd("000195012345")
    assert not valid_cccd("001495012345")       # born in the 2100s
    assert not valid_cccd("001399012345")       # born in 2099
    assert find_cccd("Điện thoại 0912345678\nSố CCCD: 001195012345") == "001195012345"
    assert mask_cccd("001195012345") == "001******345"


def test_declaration_and_file_name_merge():
    declaration = ("TỜ KHAI ĐĂNG KÝ KẾT HÔN\nHọ, chữ đệm, tên người yêu cầu: Lê Hữu Tuấn\n"
                   "Số định danh cá nhân (CCCD): 070082693020\nThủ tục đề nghị giải quyết: Đăng ký kết hôn\n"
                   "Mã thủ tục: 1.000894\nNgày nộp hồ sơ: ngày 15 tháng 10 năm 2024")
    pages = [extract_page(declaration, [], 1), extract_page("Trang 2/2\nGiấy tờ kèm theo", [], 2)]
    merged = merge_fields(pages, "HS 000.00.06.H56_241015_0007.pdf")
    assert merged["kind"] == "declaration" and merged["kinds"] == ["declaration", "other"]
    assert merged["applicant"] == "Lê Hữu Tuấn" and merged["procedure_name"] == "Đăng ký kết hôn"
    assert merged["received_date"] == "2024-10-15"
    assert [(c["source"], c["code"], c["exact"]) for c in merged["codes"]] == [
        ("filename", "000.00.06.H56-241015-0007", False)]
    assert filename_codes("scan_20241106_0001.jpg") == []


def test_codes_rank_qr_then_barcode_then_text_then_file_name():
    pages = [extract_page("Mã hồ sơ: 000.00.06.H56-231027-0362", [{"text": CODE, "kind": "barcode"}], 1),
             extract_page("", [{"text": f"{CODE}|x", "kind": "qr"}], 2)]
    merged = merge_fields(pages, "000.00.06.H56-231027-0363.pdf")
    assert [(c["source"], c["code"][-4:]) for c in merged["codes"]] == [
        ("qr", "0361"), ("text", "0362"), ("filename", "0363")]


def _page_with(symbols: list[Image.Image], dpi: int = 300) -> np.ndarray:
    """A noisy A4 page at `dpi` with the given symbols pasted down its left side."""
    rng = np.random.default_rng(3)
    page = Image.new("L", (round(8.27 * dpi), round(11.69 * dpi)), 235)
    y = dpi
    for symbol in symbols:
        page.paste(symbol, (dpi, y))
        y += symbol.height + dpi // 2
    pixels = np.asarray(page, dtype=np.int16) + rng.normal(0, 18, (page.height, page.width))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _symbol(content: str, fmt, scale: int, height: int | None = None) -> Image.Image:
    image = Image.fromarray(np.asarray(zxingcpp.write_barcode_to_image(zxingcpp.create_barcode(content, fmt),
                                                                       scale=scale))).convert("L")
    return image.resize((image.width, height), Image.NEAREST) if height else image


def test_real_qr_and_code39_are_decoded_from_a_noisy_page():
    qr_text = f"{CODE}|1.001193|001195012345|Giấy tiếp nhận hồ sơ|Hệ thống|27/10/2023 09:32"
    page = _page_with([_symbol(qr_text, zxingcpp.BarcodeFormat.QRCode, 8),
                       _symbol(CODE, zxingcpp.BarcodeFormat.Code39, 3, 120)])
    found = decode_barcodes(page)
    assert {(b["kind"], b["text"]) for b in found} == {("qr", qr_text), ("barcode", CODE)}
    # colour pages come in as BGR
    assert len(decode_barcodes(np.dstack([page] * 3))) == 2


def test_a_rendered_receipt_yields_its_code_from_the_qr_code():
    fields = synth.make_fields(7)
    receipt = synth.render_receipt(fields, dpi=200)
    found = decode_barcodes(np.asarray(receipt["image"].convert("L")))
    page = extract_page("", found)
    assert page["codes"][0]["code"] == fields["dossier_code"]
    assert page["codes"][0]["source"] in ("qr", "barcode")


@pytest.mark.parametrize("junk", [np.zeros((0, 0), np.uint8), np.zeros((5, 5), np.uint8),
                                  np.full((400, 300), 255, np.uint8), np.random.default_rng(1).random((300, 300)),
                                  np.zeros((200, 200, 4), np.uint8), "not an image"])
def test_decoding_never_raises(junk):
    assert decode_barcodes(junk) == []


def test_barcode_bars_read_as_text_are_not_a_code():
    # A cut Code 39 strip OCRs as a row of strokes that fits the short-code pattern.
    assert find_codes("I11.11-111111-1111 |l1.I1-1l1111-11l1") == []
    assert [c["code"] for c in find_codes("Mã hồ sơ: H56.14-24O823-0001")] == ["H56.14-240823-0001"]


# ---------------------------------------------------------------- labels of other vendors

@pytest.mark.parametrize("line", [
    "Ông/Bà: Trần Văn Bình", "Ông / Bà Trần Văn Bình", "Họ và tên: Trần Văn Bình", "Họ, chữ đệm, tên: Trần Văn Bình",
    "Tên tổ chức/cá nhân: Trần Văn Bình", "Tên tổ chức / cá nhân : Ông Trần Văn Bình",
    "Người nộp: Ông Trần Văn Bình", "Người nộp hồ sơ: Trần Văn Bình", "Chủ hồ sơ: TRẦN VĂN BÌNH",
    "Người yêu cầu: Trần Văn Bình", "Họ và tên người nộp: Trần Văn Bình   Số CCCD: 001090000001",
])
def test_applicant_label_family(line):
    found = find_applicant(f"PHIẾU TIẾP NHẬN\n{line}\nĐịa chỉ: Thôn 1")
    assert fold(found) == "tran van binh"


@pytest.mark.parametrize("line", [
    "Số CCCD: 001090000001", "CMND/CCCD số: 001090000001", "Căn cước công dân số: 001090000001",
    "Số định danh cá nhân: 001090000001", "Giấy tờ tùy thân: CCCD số 001090000001",
    "Số định danh cá nhân: 0010 9000 0001",
])
def test_id_label_family(line):
    assert find_cccd(f"Điện thoại: 0912345678\n{line}") == "001090000001"


@pytest.mark.parametrize("line, role", [
    ("Ngày nhận: ngày 12 tháng 8 năm 2024", "received"), ("Ngày tiếp nhận: 12/08/2024", "received"),
    ("Thời gian tiếp nhận: 14 giờ 05 phút, ngày 12/08/2024", "received"),
    ("Ngày hẹn trả: 12/08/2024", "due"), ("Thời gian hẹn trả kết quả: 14 giờ 05 phút, ngày 12/08/2024", "due"),
    ("Thời gian hẹn trả: ngày 12 tháng 08 năm 2024", "due"),
])
def test_date_label_family(line, role):
    assert [(d["date"], d["role"]) for d in find_dates(line)] == [("2024-08-12", role)]


@pytest.mark.parametrize("text", [
    "Mã hồ sơ: {c}", "Mã số hồ sơ: {c}", "Mã HS: {c}", "Mã HS:{c}", "Mã biên nhận: {c}", "Mã biên nhận hồ sơ: {c}",
    "Mã biên nhận hồ sơ: 000.20.25.H55 - 240812 - 0003", "Mã HS: 000.20.25.H55-240812-\n0003",
    "Mã HS: 000.20.25.H55\n-240812-0003", "Mã số hồ sơ: 000 . 20 . 25 . H55-240812-0003",
])
def test_code_labels_and_printed_spacing_read_exactly(text):
    found = find_codes(text.format(c="000.20.25.H55-240812-0003"))
    assert [(f["code"], f["exact"]) for f in found] == [("000.20.25.H55-240812-0003", True)]


@pytest.mark.parametrize("text", [
    "000.20.25.H55-240812\n0003",             # a line break with no dash: not joined
    "000.20.25.H55-240812-\n\n0003",          # a paragraph apart
    "Mã HS: 000.20.25.H55-240812-00 03",      # a space inside the sequence: repaired, not exact
])
def test_spacing_rules_that_refuse(text):
    assert [f["exact"] for f in find_codes(text)] in ([], [False])


SIGNATURE_BLOCKS = {
    # tesseract read the two titles as one line, the names as one line
    "two columns, one line": "NGƯỜI NỘP HỒ SƠ NGƯỜI TIẾP NHẬN HỒ SƠ\n(Ký, ghi rõ họ tên) (Ký, ghi rõ họ tên)\n"
                             "Trần Văn Bình Hoàng Thị Lan",
    # the OCR stage put each column apart (digitize.ocr splits at the gutter)
    "two columns, apart": "NGƯỜI NỘP HỒ SƠ\n(Ký và ghi rõ họ tên)\nTrần Văn Bình\nNGƯỜI TIẾP NHẬN HỒ SƠ\n"
                          "(Ký và ghi rõ họ tên)\nHoàng Thị Lan",
    "three columns": "NGƯỜI NỘP HỒ SƠ CÔNG CHỨC TIẾP NHẬN TRƯỞNG BỘ PHẬN\n(Ký, ghi rõ họ tên) (Ký, ghi rõ họ tên) "
                     "(Ký tên, đóng dấu)\nTrần Văn Bình Hoàng Thị Lan Lê Quốc Hùng",
    "chairman": "TM. ỦY BAN NHÂN DÂN\nKT. CHỦ TỊCH\nPHÓ CHỦ TỊCH\n(Ký tên, đóng dấu)\nLê Quốc Hùng",
}


@pytest.mark.parametrize("block", SIGNATURE_BLOCKS, ids=list(SIGNATURE_BLOCKS))
def test_signature_blocks_are_never_the_applicant(block):
    text = SIGNATURE_BLOCKS[block]
    assert find_applicant(text) is None
    assert find_applicant(f"Người nộp: Ông Phạm Quốc Dũng\nĐịa chỉ: Thôn 1\n{text}") == "Phạm Quốc Dũng"
    assert find_applicant(f"Người nộp: Phạm Quốc Dũng\n{text}") == "Phạm Quốc Dũng"   # no wrap into the block
    assert all(is_signature_line(line) for line in text.splitlines() if line.isupper() or "(" in line)


def test_labels_in_prose_and_empty_values_are_not_names():
    assert find_applicant("Nơi nhận:\n- Người yêu cầu;\n- Lưu: VT.") is None
    assert find_applicant("Khi đến nhận kết quả, tổ chức/cá nhân mang theo phiếu này.") is None
    assert find_applicant("Người nộp hồ sơ phải mang theo giấy tờ tùy thân.") is None


# ---------------------------------------------------------------- QR payloads (Circular 01/2023 Art. 26)

QR_CODE, QR_ID = "000.20.25.H55-240812-0003", "070201813651"
QR_PAYLOADS = {
    "json camel case": '{"MaHoSo": "%s", "MaTTHC": "1.001193", "SoDinhDanh": "%s", "TenGiayTo": "Phiếu tiếp nhận",'
                       ' "ThoiGian": "20240812140500", "NgayHenTra": "20240815"}' % (QR_CODE, QR_ID),
    "json with marks": '{"Mã hồ sơ": "%s", "Mã thủ tục": "1.001193", "Số định danh": "%s", '
                       '"Thời gian": "12/08/2024 14:05"}' % (QR_CODE, QR_ID),
    "json nested, escaped": '{"HoSo": {"ma_ho_so": "%s", "ChuHoSo": {"HoTen": "Tr\\u1ea7n V\\u0103n B\\u00ecnh",'
                            ' "SoDinhDanh": "%s"}}, "ma_tthc": "1.001193"}' % (QR_CODE, QR_ID),
    "key:value|": "Ma ho so:%s|Ma TTHC:1.001193|So CCCD:%s|Ten giay to:Phieu|Thoi gian:12/08/2024 14:05" % (
        QR_CODE, QR_ID),
    "key=value;": "MaHoSo=%s;MaTTHC=1.001193;SoDinhDanh=%s;TenGiayTo=Phieu;ThoiGian=20240812140500" % (
        QR_CODE, QR_ID),
    "positional |": "%s|1.001193|%s|Giấy tiếp nhận hồ sơ|Hệ thống|12/08/2024 14:05" % (QR_CODE, QR_ID),
}


@pytest.mark.parametrize("kind", QR_PAYLOADS, ids=list(QR_PAYLOADS))
def test_qr_encodings(kind):
    found = qr_fields(QR_PAYLOADS[kind])
    assert (found["code"], found["procedure_code"], found["cccd"]) == (QR_CODE, "1.001193", QR_ID)
    page = extract_page("", [{"text": QR_PAYLOADS[kind], "kind": "qr"}])
    assert [(c["source"], c["code"]) for c in page["codes"]] == [("qr", QR_CODE)]
    assert (page["cccd"], page["cccd_source"]) == (QR_ID, "qr")


def test_bare_code_qr_and_fields_the_qr_outranks():
    assert qr_fields(QR_CODE)["code"] == QR_CODE and qr_fields(QR_CODE)["cccd"] is None
    page = extract_page("Số CCCD: 001090000001", [{"text": QR_PAYLOADS["key=value;"], "kind": "qr"}])
    assert (page["cccd"], page["cccd_source"]) == (QR_ID, "qr")
    assert page["due_date"] is None and "2024-08-12" in [d["date"] for d in page["dates"]]
    assert extract_page("", [{"text": QR_PAYLOADS["json camel case"], "kind": "qr"}])["due_date"] == "2024-08-15"


@pytest.mark.parametrize("payload", [
    "MaHoSo=000.20.25.H55-240812-O003;SoDinhDanh=070201813651",    # damaged code: never repaired
    "MaHoSo=000.20.25.H55-241312-0003",                              # no such date
    "https://dichvucong.example/tra-cuu?hs=1234",                    # something else entirely
])
def test_qr_payloads_that_give_no_code(payload):
    assert qr_fields(payload)["code"] is None
    assert extract_page("", [{"text": payload, "kind": "qr"}])["codes"] == []


def test_qr_id_of_bad_shape_is_refused():
    assert qr_fields("MaHoSo=%s;SoDinhDanh=999201813651" % QR_CODE)["cccd"] is None


def test_a_dense_qr_resampled_by_deskewing_is_still_read():
    # A result's multi-field QR at 2 px a module, scanned 2.4° off with sensor noise and turned
    # back by the pipeline: zxing's local thresholds lose it, one fixed threshold does not.
    payload = json.dumps({"Mã hồ sơ": QR_CODE, "Mã thủ tục": "1.001193", "Số định danh": QR_ID,
                          "Tên giấy tờ": "Trích lục khai sinh", "Hệ thống": "Cổng dịch vụ công tỉnh",
                          "Thời gian": "15/08/2024 16:30", "Hiệu lực": "Không thời hạn"})
    symbol = np.asarray(zxingcpp.write_barcode_to_image(
        zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.QRCode, ec_level="M"), scale=2))
    page = np.full((700, 700), 255, np.uint8)
    page[100:100 + symbol.shape[0], 100:100 + symbol.shape[1]] = symbol
    scanned = orient.rotate(page, 2.4, fill=255)
    scanned = np.clip(scanned + np.random.default_rng(1).normal(0, 8, scanned.shape), 0, 255).astype(np.uint8)
    found = decode_barcodes(orient.rotate(scanned, -2.4, fill=255))
    assert [qr_fields(b["text"])["code"] for b in found] == [QR_CODE]
