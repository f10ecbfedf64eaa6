"""The synthetic ground truth itself: rendering, degradation geometry, writers, codes, metrics."""
from __future__ import annotations

import importlib.util
import json
import re
import unicodedata
from pathlib import Path

import numpy as np
import pikepdf
import pytest
import zxingcpp
from PIL import Image

from digitize import fonts
from tools import evaluate, synth

FIELDS = synth.make_fields(7)


def has_dpi(image: Image.Image) -> bool:
    """Resolution metadata really in the file (Pillow reports dpi (1, 1) for a TIFF without any)."""
    if image.format == "TIFF":
        return 282 in image.tag_v2  # XResolution
    return "dpi" in image.info


def ink_box(image: Image.Image) -> tuple[int, int, int, int]:
    """Bounding box of dark pixels."""
    dark = np.asarray(image.convert("L")) < 128
    ys, xs = np.nonzero(dark)
    return xs.min(), ys.min(), xs.max(), ys.max()


@pytest.mark.parametrize("paper,dpi", [("A4", 200), ("A4", 300), ("A5", 200)])
def test_page_size_follows_paper_and_dpi(paper, dpi):
    page = synth.render_prose(dpi=dpi, paper=paper)
    w_mm, h_mm = synth.PAPER_MM[paper]
    assert page["image"].size == (round(w_mm * dpi / 25.4), round(h_mm * dpi / 25.4))
    assert page["dpi"] == dpi and page["paper"] == paper


def test_font_has_vietnamese_glyphs():
    # Liberation 1.x (fonts-liberation) draws a box for "ậ": the check must tell it apart,
    # and the font chosen must be the 2.x one that draws the letters.
    old = Path("/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf")
    assert old.exists() and not fonts.covers_vietnamese(old)
    for style in ("regular", "bold"):
        assert fonts.font_path(style).parent.name == "liberation2"
        assert fonts.covers_vietnamese(fonts.font_path(style))


@pytest.mark.parametrize("kind", ["receipt", "declaration", "decision", "prose"])
def test_truth_words_are_nfc_and_match_text(kind):
    page = synth.render_page(kind, FIELDS)
    assert page["words"] and page["text"] == " ".join(page["words"])
    assert all(unicodedata.is_normalized("NFC", w) and w.strip() == w and w for w in page["words"])
    assert synth.SLOGAN.split()[0] in page["words"]
    # Every identifier printed on the page is in the words (QR content is only encoded).
    for key in ("dossier_code", "procedure_code", "cccd"):
        if key in page["codes"]:
            assert any(page["codes"][key] in w for w in page["words"]), key


@pytest.mark.parametrize("paper", ["A4", "A5"])
def test_receipt_carries_code_text_barcode_and_qr(paper):
    page = synth.render_receipt(FIELDS, dpi=200, paper=paper)
    assert page["words"][-1] == FIELDS["officer"].split()[-1]  # the whole receipt fits
    code = FIELDS["dossier_code"]
    assert re.fullmatch(r"\d{3}\.\d{2}\.\d{2}\.H56-\d{6}-\d{4}", code)
    assert "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ" in page["text"]
    decoded = {r.format: r.text for r in zxingcpp.read_barcodes(page["image"])}
    assert decoded[zxingcpp.BarcodeFormat.Code39] == code
    qr = decoded[zxingcpp.BarcodeFormat.QRCode]
    assert qr == page["codes"]["qr"]
    parts = qr.split("|")
    assert parts[0] == code and parts[1] == FIELDS["procedure_code"] and parts[2] == FIELDS["cccd"]
    assert len(parts) == 6


def test_qr_survives_skew_and_jpeg():
    page = synth.scan(synth.render_receipt(FIELDS, dpi=300), 7.0, seed=3, noise=4, jpeg_quality=60)
    texts = [r.text for r in zxingcpp.read_barcodes(page["image"], formats=zxingcpp.BarcodeFormat.QRCode)]
    assert texts and texts[0].startswith(FIELDS["dossier_code"] + "|")


def test_declaration_fields_and_parts():
    first = synth.render_declaration(FIELDS, part=1, parts=2)
    second = synth.render_declaration(FIELDS, part=2, parts=2)
    assert first["text"].startswith(synth.MOTTO)
    assert f"TỜ KHAI {FIELDS['procedure_name'].upper()}" in first["text"]
    assert FIELDS["cccd"] in first["words"] and len(FIELDS["cccd"]) == 12
    day = FIELDS["received"]
    assert f"ngày {day.day:02d} tháng {day.month:02d} năm {day.year}" in first["text"]
    assert FIELDS["dossier_code"] not in first["text"]  # declarations never carry the code
    assert "Tôi cam đoan" not in first["text"] and "Tôi cam đoan" in second["text"]


def test_declaration_code_stamp_in_top_right_corner():
    stamped = synth.render_declaration(FIELDS, stamp_code=True)
    plain = synth.render_declaration(FIELDS)
    code = FIELDS["dossier_code"]
    assert stamped["words"][:4] == ["Mã", "hồ", "sơ:", code] and stamped["codes"]["dossier_code"] == code
    assert stamped["words"][4:] == plain["words"]  # the form itself is unchanged
    # The stamp's ink lies in the top margin, right half; the plain form has none there.
    width, top = stamped["image"].width, round(synth.MARGINS_MM["A4"][1] * 200 / 25.4)
    x0, y0, x1, y1 = ink_box(stamped["image"].crop((0, 0, width, top)))
    assert x0 > width // 2 and y1 < top
    assert np.asarray(plain["image"].crop((0, 0, width, top))).min() > 128
    assert "dossier_code" not in synth.render_declaration(FIELDS, part=2, parts=2, stamp_code=True)["codes"]


def test_decision_number_symbol_and_optional_code():
    with_code = synth.render_decision(FIELDS)
    without = synth.render_decision(FIELDS, cite_code=False)
    assert re.fullmatch(r"\d+/QĐ-UBND", with_code["codes"]["number_symbol"])
    assert f"Số: {with_code['codes']['number_symbol']}" in with_code["text"]
    assert FIELDS["dossier_code"] in with_code["text"] and FIELDS["dossier_code"] not in without["text"]
    assert "dossier_code" not in without["codes"]


def test_prose_keeps_only_what_fits_in_order():
    paragraphs = [f"đoạn {i} có nội dung tiếng Việt đầy đủ dấu thanh ở đây." for i in range(200)]
    page = synth.render_prose(paragraphs, dpi=200)
    body = " ".join(paragraphs)
    rendered = " ".join(page["words"][page["words"].index("đoạn"):])
    assert body.startswith(rendered) and len(rendered) < len(body)
    assert ink_box(page["image"])[3] < page["image"].height - round(15 * 200 / 25.4)


def test_render_is_deterministic_and_fast():
    import time
    start = time.perf_counter()
    one = synth.render_receipt(FIELDS, dpi=300)
    assert time.perf_counter() - start < 1.0
    two = synth.render_receipt(FIELDS, dpi=300)
    assert one["image"].tobytes() == two["image"].tobytes()


@pytest.mark.parametrize("angle,orientation,skew", [
    (0, 0, 0.0), (7, 0, 7.0), (-3, 0, -3.0), (90, 90, 0.0), (181.5, 180, 1.5), (268, 270, -2.0),
    (-90, 270, 0.0), (44, 0, 44.0)])
def test_split_angle(angle, orientation, skew):
    assert synth.split_angle(angle) == (orientation, pytest.approx(skew))


def test_quarter_turns_are_exact_and_counter_clockwise():
    page = synth.render_prose(dpi=100)
    image = page["image"]
    turned = synth.rotate(image, 90)
    assert turned.size == (image.height, image.width)
    assert np.array_equal(np.asarray(turned), np.rot90(np.asarray(image), 1))  # rot90: CCW
    assert np.array_equal(np.asarray(synth.rotate(image, 180)), np.asarray(image)[::-1, ::-1])


@pytest.mark.parametrize("angle", [7.0, -3.0, 30.0])
def test_skew_expands_canvas_and_turns_content_ccw(angle):
    image = Image.new("L", (400, 200), 255)
    image.paste(0, (50, 95, 350, 105))  # a horizontal bar through the centre
    turned = synth.rotate(image, angle)
    rad = np.deg2rad(abs(angle))
    assert abs(turned.width - (400 * np.cos(rad) + 200 * np.sin(rad))) <= 2
    assert abs(turned.height - (400 * np.sin(rad) + 200 * np.cos(rad))) <= 2
    ys, xs = np.nonzero(np.asarray(turned) < 128)
    slope = np.polyfit(xs, ys, 1)[0]
    # CCW on screen: the right end rises, i.e. y (downwards) falls as x grows.
    assert np.degrees(np.arctan(-slope)) == pytest.approx(angle, abs=0.3)


def test_scan_records_geometry_and_keeps_words():
    page = synth.render_receipt(FIELDS)
    scanned = synth.scan(page, 263.0, seed=1, noise=5)
    assert (scanned["orientation"], scanned["skew"], scanned["angle"]) == (270, pytest.approx(-7.0), 263.0)
    assert scanned["words"] == page["words"] and page["orientation"] == 0


def test_degradations_change_pixels_as_described():
    image = synth.render_prose(dpi=150)["image"]
    clean = np.asarray(image, dtype=float)
    border = np.asarray(synth.degrade(image, border="lr", dpi=150, seed=2), dtype=float)
    assert border[:, :5].mean() < 90 and border[:, -5:].mean() < 90 and border[:5, 100:-100].mean() > 200
    assert np.array_equal(synth.degrade(image, noise=8, seed=4), synth.degrade(image, noise=8, seed=4))
    grey = np.asarray(synth.degrade(Image.new("L", (400, 400), 128), noise=8, seed=4), dtype=float)
    assert 7.5 < np.std(grey) < 8.5  # sigma in grey levels (away from clipping)
    speckled = np.asarray(synth.degrade(image, speckle=0.01, seed=4))
    assert 0.003 < np.mean(speckled[clean == 255] == 0) < 0.007
    lit = np.asarray(synth.degrade(image, illumination=0.3, seed=5), dtype=float)
    assert lit.min() >= 0 and clean[clean == 255].size and lit[clean == 255].min() < 200
    blurred = np.asarray(synth.degrade(image, blur=1.5), dtype=float)
    assert np.abs(np.diff(blurred, axis=1)).mean() < np.abs(np.diff(clean, axis=1)).mean()
    jpeg = synth.degrade(image, jpeg_quality=20)
    assert jpeg.size == image.size and not np.array_equal(np.asarray(jpeg), clean)


def test_colour_page_and_seal():
    page = synth.render_decision(FIELDS, color=True)
    pixels = np.asarray(page["image"]).astype(int)
    assert page["image"].mode == "RGB"
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 90)
    assert red.sum() > 1000
    scanned = synth.scan(page, 12.0, seed=1, border="t", noise=3)
    assert scanned["image"].mode == "RGB"


@pytest.mark.parametrize("dpi", [200, 300, None])
def test_pdf_writer_pages_and_size(tmp_path, dpi):
    pages = [synth.render_receipt(FIELDS, dpi=200)["image"], synth.rotate(synth.render_prose()["image"], 90)]
    path = synth.write_pdf(tmp_path / "feed.pdf", pages, dpi)
    with pikepdf.open(path) as pdf:
        assert len(pdf.pages) == 2
        for page, image in zip(pdf.pages, pages):
            box = [float(v) for v in page.mediabox]
            assert box[2] == pytest.approx(image.width * 72 / (dpi or 72), abs=0.5)
            assert box[3] == pytest.approx(image.height * 72 / (dpi or 72), abs=0.5)


@pytest.mark.parametrize("dpi", [200, None])
def test_tiff_writer_multi_page(tmp_path, dpi):
    images = [synth.render_declaration(FIELDS, part=k, parts=2)["image"] for k in (1, 2)]
    path = synth.write_tiff(tmp_path / "d.tif", images, dpi)
    with Image.open(path) as tiff:
        assert tiff.n_frames == 2
        for frame in range(2):
            tiff.seek(frame)
            assert tiff.size == images[frame].size
            assert np.array_equal(np.asarray(tiff), np.asarray(images[frame]))
            assert has_dpi(tiff) == (dpi is not None)
            if dpi:
                assert tuple(map(round, tiff.info["dpi"])) == (dpi, dpi)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
@pytest.mark.parametrize("dpi", [300, None])
def test_image_writers_dpi_metadata(tmp_path, suffix, dpi):
    image = synth.render_prose(dpi=150)["image"]
    image.info["dpi"] = (96, 96)  # inherited metadata must not leak into a "no dpi" file
    path = synth.write_image(tmp_path / f"p{suffix}", image, dpi)
    with Image.open(path) as back:
        assert back.size == image.size
        assert has_dpi(back) == (dpi is not None)
        if dpi:
            assert tuple(round(v) for v in back.info["dpi"]) == (dpi, dpi)


def test_write_pages_refuses_many_pages_in_single_page_format(tmp_path):
    image = synth.render_prose(dpi=72)["image"]
    with pytest.raises(ValueError):
        synth.write_pages(tmp_path / "two.png", [image, image])


def test_word_recall_is_multiset_and_diacritic_exact():
    truth = ["hồ", "sơ", "hồ", "sơ", "Việt"]
    assert evaluate.word_recall_counts(truth, "hồ sơ Viet") == (2, 5)
    nfd = unicodedata.normalize("NFD", "hồ sơ hồ sơ Việt")
    assert evaluate.word_recall_counts(truth, nfd) == (5, 5)
    assert evaluate.cer_counts("a  b\nc", "a b c") == (0, 5)
    assert evaluate.cer_counts("abcd", "abxd") == (1, 4)


def test_committed_samples_match_their_truth():
    samples = Path(__file__).resolve().parent.parent / "samples"
    truth = json.loads((samples / "truth.json").read_text(encoding="utf-8"))
    assert len(truth) >= 8
    for name, entry in truth.items():
        path = samples / name
        assert path.exists(), name
        if path.suffix == ".pdf":
            with pikepdf.open(path) as pdf:
                assert len(pdf.pages) == len(entry["pages"])
        else:
            with Image.open(path) as image:
                assert getattr(image, "n_frames", 1) == len(entry["pages"])
                assert has_dpi(image) == entry["dpi_metadata"]
        for page in entry["pages"]:
            assert synth.split_angle(page["angle"]) == (page["orientation"], pytest.approx(page["skew"]))
    lines = (samples / "registry.csv").read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("Mã hồ sơ,") and len(lines) >= 13


def test_generator_reproduces_committed_truth_and_registry(tmp_path):
    samples = Path(__file__).resolve().parent.parent / "samples"
    spec = importlib.util.spec_from_file_location("sample_generator", samples / "generate.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.main(tmp_path) == 0
    for name in ("truth.json", "registry.csv"):
        assert (tmp_path / name).read_bytes() == (samples / name).read_bytes(), name
    # Pixels may differ across Pillow/libjpeg versions; the set of files may not.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in samples.iterdir()
                                                                if p.suffix != ".py" and p.is_file())
