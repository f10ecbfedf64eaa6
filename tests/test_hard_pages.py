"""Pages unlike the project's own scans, through the real `digitize process`: grey and yellowed
paper at large angles, a photocopy, a seal and a signature over text, a phone photo of a sheet on
a desk (JPEG and HEIC), bold serif headers, a 150 dpi JPEG, a blank page. Each page must read at
least as well as raw tesseract would, and a page with nothing on it says so."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pikepdf
import pillow_heif
import pytest
from PIL import Image

from digitize import clean, config, engine, pages, pipelines, sheet
from tools import paper, synth

from .conftest import corpus_paragraphs, json_lines, run_digitize, word_recall

FIELDS = synth.make_fields(11)


def _pdf_image(path: str) -> tuple[np.ndarray, float, float]:
    """The page image of a one-page output PDF as an array, and the page's size in points."""
    with pikepdf.open(path) as pdf:
        page = pdf.pages[0]
        image = pikepdf.PdfImage(next(iter(page.get_images().values()))).as_pil_image()
        return np.asarray(image), float(page.mediabox[2]), float(page.mediabox[3])


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hard")
    inbox, out, home = folder / "in", folder / "out", folder / "home"
    inbox.mkdir()
    pages = {}
    prose = synth.render_prose(corpus_paragraphs("ho-tich.txt", 0, 10), dpi=200)
    pages["grey-30.png"] = paper.tinted(prose, (200, 200, 196), 30.0, 250, seed=1)
    receipt300 = synth.render_receipt(FIELDS, dpi=300)
    pages["photocopy.png"] = paper.photocopy(receipt300, 2.0, 190.0, 60.0, 0.5, 0.002, seed=2)
    decision = synth.render_decision(FIELDS, dpi=300)
    pages["seal.png"] = paper.seal_and_signature(decision, 0.5, (200, 30, 40), (40, 60, 170), 19.0, seed=3)
    photo = paper.phone_photo(synth.render_prose(corpus_paragraphs("ho-tich.txt", 20, 10), dpi=300),
                              (3000, 4000), 0.8, 0.05, ((60, 45, 35),), 0.65, 88, 5.0, seed=4)
    pages["photo.jpg"] = photo
    pages["bold-serif.png"] = synth.render_receipt(FIELDS, dpi=300, pt=16.0)
    low = synth.scan(synth.render_declaration(FIELDS, dpi=150), 1.5, seed=5, noise=2.0)
    pages["low-150.jpg"] = low
    for name, page in pages.items():
        dpi = None if name == "photo.jpg" else page["dpi"]
        synth.write_image(inbox / name, page["image"], dpi, quality=75 if name == "low-150.jpg" else 90)
    heic = synth.render_decision(synth.make_fields(12), dpi=300)
    pages["photo.heic"] = paper.phone_photo(heic, (3000, 4000), 0.78, 0.04, ((40, 40, 48),), 0.7, 90, 4.0, seed=6)
    pillow_heif.register_heif_opener()
    pages["photo.heic"]["image"].convert("RGB").save(inbox / "photo.heic", quality=90)
    synth.write_image(inbox / "blank.png", Image.new("L", (1654, 2339), 255), 200)
    result = run_digitize(["process", str(inbox), "--out", str(out), "--json"], home)
    assert result.returncode == 0, result.stderr
    return {"pages": pages, "results": {Path(r["source"]).name: r for r in json_lines(result.stdout)}}


def _text(hard, name: str) -> str:
    record = hard["results"][name]
    assert record["status"] == "done", record["error"]
    return Path(record["text_path"]).read_text(encoding="utf-8")


def test_grey_paper_at_30_degrees_comes_out_with_its_words(hard):
    page = hard["results"]["grey-30.png"]["pages"][0]
    assert abs(page["skew"] - 30.0) < 0.2 and page["warnings"] == []
    assert word_recall(hard["pages"]["grey-30.png"]["words"], _text(hard, "grey-30.png")) > 0.97
    # The corners the turn added are the paper's grey, not white.
    pixels, _, _ = _pdf_image(hard["results"]["grey-30.png"]["output"])
    assert abs(float(np.median(pixels[:20, :20])) - 200) < 15


def test_photocopy_reads(hard):
    assert word_recall(hard["pages"]["photocopy.png"]["words"], _text(hard, "photocopy.png")) > 0.95


def test_a_seal_over_text_does_not_cost_the_words_under_it(hard):
    text = _text(hard, "seal.png")
    assert word_recall(hard["pages"]["seal.png"]["words"], text) > 0.97
    # The archive keeps the seal's red: the OCR copy alone drops it.
    pixels, _, _ = _pdf_image(hard["results"]["seal.png"]["output"])
    assert pixels.ndim == 3
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 90) & (pixels[..., 2] < 110)
    assert red.sum() > 1000


@pytest.mark.parametrize("name", ["photo.jpg", "photo.heic"])
def test_photo_of_a_sheet_on_a_dark_desk_comes_out_upright_flat_and_read(hard, name):
    record = hard["results"][name]
    assert record["pages"][0]["photo"] is True and record["pages"][0]["orientation"] == 0
    assert word_recall(hard["pages"][name]["words"], _text(hard, name)) > 0.95
    pixels, width_pt, height_pt = _pdf_image(record["output"])
    # A sheet of A4 proportions, standing; its resolution that of the sheet, not of the frame.
    assert abs(height_pt / width_pt - 2 ** 0.5) < 0.02 and abs(width_pt - 595) < 3
    # Flat: no desk left in the corners, the paper's light even from corner to corner.
    grey = pixels if pixels.ndim == 2 else pixels.mean(axis=2)
    h, w = grey.shape
    corners = [grey[int(h * y):int(h * y) + h // 20, int(w * x):int(w * x) + w // 20]
               for y in (0.01, 0.93) for x in (0.01, 0.93)]
    levels = [float(np.percentile(c, 90)) for c in corners]
    assert min(levels) > 200 and max(levels) - min(levels) < 25


def test_bold_serif_header_keeps_its_marks(hard):
    text = _text(hard, "bold-serif.png")
    assert "BỘ PHẬN TIẾP NHẬN VÀ TRẢ KẾT QUẢ" in text
    assert word_recall(hard["pages"]["bold-serif.png"]["words"], text) > 0.98


def test_150_dpi_jpeg_reads(hard):
    assert word_recall(hard["pages"]["low-150.jpg"]["words"], _text(hard, "low-150.jpg")) > 0.97


def test_a_blank_page_is_done_but_flagged_never_silently(hard):
    record = hard["results"]["blank.png"]
    assert record["status"] == "done"
    page = record["pages"][0]
    assert page["reading"] in ("clean", "scan", "binarised", "full resolution")
    assert page["warnings"] and "no text" in page["warnings"][0]


def test_a_flatbed_scan_with_lid_borders_is_not_taken_for_a_photo():
    page = synth.render_prose(dpi=150)
    for sides in ("l", "lt", "ltrb"):
        scanned = np.asarray(synth.scan(page, 2.0, seed=7, border=sides, illumination=0.2)["image"])
        assert sheet.find_sheet(scanned) is None


def test_paper_colour_and_coloured_ink():
    grey_paper = np.asarray(paper.tinted(synth.render_prose(dpi=100), (240, 226, 178), 0.0, 255, seed=8)["image"])
    assert np.allclose(clean.paper_colour(grey_paper), (240, 226, 178), atol=8)
    sealed = paper.seal_and_signature(synth.render_decision(FIELDS, dpi=100), 0.0, (200, 30, 40), (40, 60, 170),
                                      19.0, seed=9)
    rgb = np.asarray(sealed["image"])
    dropped = clean.ink_grey(rgb)
    plain = np.asarray(synth.render_decision(FIELDS, dpi=100)["image"])
    # Red and blue ink gone from the OCR copy; black text (under the seal too) as dark as before.
    coloured = (rgb.max(axis=2).astype(int) - rgb.min(axis=2)) > 80
    assert coloured.sum() > 500 and dropped[coloured & (plain > 200)].min() > 150
    assert np.abs(dropped[plain < 60].astype(int) - plain[plain < 60]).mean() < 40


def test_a_poor_reading_is_replaced_by_the_one_tesseract_is_surest_of(tmp_path):
    """A pipeline whose OCR copy is far too coarse (40 dpi) reads a page poorly: the page is read
    again from the scan's own pixels, that reading wins, and its text layer sits on the scan."""
    page = synth.scan(synth.render_receipt(FIELDS, dpi=200), 0.0, seed=10)
    path = synth.write_image(tmp_path / "receipt.png", page["image"], 200)
    settings = config.load_config()
    coarse = pipelines.load_pipeline("intake")
    coarse["ocr"] = {**coarse["ocr"], "max_dpi": 40}
    info = pages.inspect(path, settings)
    result = engine.process_page(engine.PageTask(info, 0, coarse, str(tmp_path), 300.0))
    assert result.reading.reading == "scan" and not result.reading.warnings
    assert word_recall(page["words"], result.reading.text) > 0.97
    assert (result.image.width, result.image.height) == page["image"].size
    assert Path(result.image.text_pdf).is_file() and len(list(tmp_path.glob("*.pdf"))) == 1
