"""`digitize process` end to end: real files, real tesseract, PDFs reopened with pikepdf."""
from __future__ import annotations

import subprocess
import unicodedata
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from digitize import errors, store
from tools import synth
from digitize.assemble import XMP_NAMESPACE
from digitize.config import load_config, resolve_paths

from .conftest import corpus_paragraphs, json_lines, run_digitize, word_recall


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    """A 3-page TIFF (upright, turned 90° + 3°, upside down) and a skewed colour JPEG without dpi."""
    folder = tmp_path_factory.mktemp("process")
    inbox, out, home = folder / "in", folder / "out", folder / "home"
    inbox.mkdir()
    pages = [synth.render_prose(corpus_paragraphs("ho-tich.txt", 10 * i, 6), dpi=200) for i in range(3)]
    angles = [0.0, 93.0, 180.0]
    scans = [synth.scan(page, angle=angle, seed=i) for i, (page, angle) in enumerate(zip(pages, angles))]
    synth.write_pages(inbox / "ho so nhieu trang.tif", [s["image"] for s in scans], dpi=200)
    receipt = synth.render_receipt(synth.make_fields(7), dpi=300, color=True)
    synth.write_image(inbox / "biên nhận.jpg", synth.scan(receipt, angle=-8.5, seed=2)["image"], dpi=None)
    result = run_digitize(["process", str(inbox), "--out", str(out), "--json"], home)
    assert result.returncode == 0, result.stderr
    by_name = {Path(r["source"]).name: r for r in json_lines(result.stdout)}
    return {"out": out, "home": home, "inbox": inbox, "results": by_name, "pages": pages,
            "angles": angles, "receipt": receipt}


def test_json_reports_each_page_in_order(processed):
    result = processed["results"]["ho so nhieu trang.tif"]
    assert result["status"] == "done" and result["error"] is None
    assert [p["orientation"] for p in result["pages"]] == [0, 90, 180]
    assert [round(p["skew"], 1) for p in result["pages"]] == [0.0, 3.0, 0.0]
    assert all(p["confidence"] > 80 for p in result["pages"])
    assert set(result) >= {"source", "status", "output", "text_path", "pages", "error"}


def test_pdf_reopens_with_pages_upright_at_scan_resolution(processed):
    output = Path(processed["results"]["ho so nhieu trang.tif"]["output"])
    assert output.stat().st_mode & 0o777 == 0o640  # the service user and group only: it holds personal data
    with pikepdf.open(output) as pdf:
        assert len(pdf.pages) == 3
        for page in pdf.pages:
            width_pt, height_pt = float(page.mediabox[2]), float(page.mediabox[3])
            image = next(iter(page.get_images().values()))
            # 200 dpi kept: pixels / points * 72 = dpi, and the page stands upright (portrait).
            assert round(int(image.Width) / width_pt * 72) == 200
            assert height_pt > width_pt
            assert image.ColorSpace == pikepdf.Name.DeviceGray
        assert pdf.docinfo["/Pipeline"] == "intake"
        with pdf.open_metadata() as xmp:
            assert xmp[f"{{{XMP_NAMESPACE}}}pageCount"] == "3"
            assert xmp[f"{{{XMP_NAMESPACE}}}ocrLanguage"] == "vie"
            assert xmp["dc:title"] == "ho so nhieu trang.tif"


def test_text_layer_is_searchable_and_matches_the_page(processed):
    output = processed["results"]["ho so nhieu trang.tif"]["output"]
    for number, page in enumerate(processed["pages"], start=1):
        text = subprocess.run(["pdftotext", "-f", str(number), "-l", str(number), output, "-"],
                              capture_output=True, text=True, check=True).stdout
        assert word_recall(page["words"], text) > 0.97


def test_text_layer_words_sit_on_their_image(processed):
    """pdftotext -bbox: the title word of the upright page lies in the top quarter of the page."""
    output = processed["results"]["ho so nhieu trang.tif"]["output"]
    html = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", output, "-"],
                          capture_output=True, text=True, check=True).stdout
    line = next(l for l in html.splitlines() if ">THÔNG<" in l or ">BÁO<" in l)
    y_min = float(line.split('yMin="')[1].split('"')[0])
    assert y_min < 842 / 4


def test_sidecar_is_nfc_and_recalls_the_words(processed):
    result = processed["results"]["ho so nhieu trang.tif"]
    text = Path(result["text_path"]).read_text(encoding="utf-8")
    assert unicodedata.is_normalized("NFC", text)
    assert text.count("\f") == 2
    all_words = [w for page in processed["pages"] for w in page["words"]]
    assert word_recall(all_words, text) > 0.97


def test_colour_jpeg_without_dpi_keeps_colour_and_estimated_resolution(processed):
    result = processed["results"]["biên nhận.jpg"]
    assert result["status"] == "done"
    assert result["pages"][0]["orientation"] == 0 and abs(result["pages"][0]["skew"] + 8.5) < 0.1
    with pikepdf.open(result["output"]) as pdf:
        page = pdf.pages[0]
        image = next(iter(page.get_images().values()))
        assert image.ColorSpace == pikepdf.Name.DeviceRGB
        # No dpi metadata: estimated from A4 paper, 300 dpi.
        assert abs(int(image.Width) / float(page.mediabox[2]) * 72 - 300) < 40
    text = Path(result["text_path"]).read_text(encoding="utf-8")
    assert processed["receipt"]["fields"]["dossier_code"] in text.replace(" ", "")
    # The two-column header comes out column by column, not run together line by line.
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text.splitlines()


def test_catalogue_rows_and_reprocessing_updates_not_duplicates(processed):
    paths = resolve_paths(load_config({"DIGITIZE_HOME": str(processed["home"])}))
    conn = store.connect(paths["catalogue"])
    documents = store.list_documents(conn)
    assert sorted(Path(d["source"]).name for d in documents) == ["biên nhận.jpg", "ho so nhieu trang.tif"]
    tiff = next(d for d in documents if d["source"].endswith(".tif"))
    pages = store.get_pages(conn, tiff["id"])
    assert [p["orientation"] for p in pages] == [0, 90, 180]
    assert tiff["pipeline"] == "intake" and len(tiff["pipeline_hash"]) == 16
    again = run_digitize(["process", str(processed["inbox"] / "biên nhận.jpg"), "--out",
                          str(processed["out"]), "--json"], processed["home"])
    assert again.returncode == 0
    assert len(store.list_documents(conn)) == 2
    jpeg = next(d for d in store.list_documents(conn) if d["source"].endswith(".jpg"))
    assert len(store.document_versions(conn, jpeg["id"])) == 2


def test_fast_pipeline_is_selectable_and_recorded(tmp_path, home):
    page = synth.render_prose(corpus_paragraphs("van-thu.txt", 0, 3), dpi=200, color=True)
    source = synth.write_image(tmp_path / "trang.png", page["image"], dpi=200)
    result = run_digitize(["process", str(source), "--out", str(tmp_path / "out"), "--pipeline",
                           "fast", "--json"], home)
    assert result.returncode == 0, result.stderr
    [line] = json_lines(result.stdout)
    with pikepdf.open(line["output"]) as pdf:
        assert pdf.docinfo["/Pipeline"] == "fast"
        image = next(iter(pdf.pages[0].get_images().values()))
        assert image.ColorSpace == pikepdf.Name.DeviceGray  # fast keeps no colour
    assert run_digitize(["process", str(source), "--pipeline", "nope"], home).returncode == errors.BAD_CONFIG


def _bad_inputs(folder: Path, good_pdf: Path) -> dict[str, int]:
    (folder / "rong.pdf").write_bytes(b"")
    data = good_pdf.read_bytes()
    (folder / "cut.pdf").write_bytes(data[: len(data) // 3])
    (folder / "hong.pdf").write_bytes(b"%PDF-1.4\n1 0 obj garbage\n")
    (folder / "chu.jpg").write_text("không phải ảnh", encoding="utf-8")
    # A JPEG cut short: only the worker decoding it finds out, and says so.
    jpeg = synth.write_image(folder / "full.jpg", synth.render_prose(dpi=100)["image"], dpi=100)
    (folder / "cut.jpg").write_bytes(jpeg.read_bytes()[:4000])
    jpeg.unlink()
    with pikepdf.open(good_pdf) as pdf:
        pdf.save(folder / "khoa.pdf", encryption=pikepdf.Encryption(owner="o", user="u"))
    with pikepdf.new() as empty:
        empty.save(folder / "trong.pdf")
    Image.new("1", (20000, 20000)).save(folder / "bom.png")
    return {"rong.pdf": errors.INPUT_FILE, "cut.pdf": errors.INPUT_FILE, "hong.pdf": errors.INPUT_FILE,
            "chu.jpg": errors.INPUT_FILE, "cut.jpg": errors.INPUT_FILE, "khoa.pdf": errors.ENCRYPTED_PDF, "trong.pdf": errors.INPUT_FILE,
            "bom.png": errors.INPUT_FILE}


def test_bad_inputs_fail_cleanly_with_documented_codes(processed, tmp_path, home):
    expected = _bad_inputs(tmp_path, Path(processed["results"]["ho so nhieu trang.tif"]["output"]))
    out = tmp_path / "out"
    for name, code in expected.items():
        result = run_digitize(["process", str(tmp_path / name), "--out", str(out), "--json"], home,
                              DIGITIZE_PROCESSING_MAX_PIXELS="100000000")
        assert result.returncode == code, (name, result.stdout, result.stderr)
        [line] = json_lines(result.stdout)
        assert line["status"] == "failed" and " / " in line["error"] and "\n" not in line["error"]
    assert not out.exists() or list(out.iterdir()) == []


def test_pdf_with_text_is_filed_as_it_came_unless_forced(processed, tmp_path, home):
    searchable = processed["results"]["ho so nhieu trang.tif"]["output"]
    kept = run_digitize(["process", searchable, "--out", str(tmp_path), "--json"], home)
    assert kept.returncode == 0, kept.stderr
    [result] = json_lines(kept.stdout)
    assert result["status"] == "done" and result["kept_as_is"] and len(result["pages"]) == 3
    assert Path(result["output"]).read_bytes() == Path(searchable).read_bytes()  # byte for byte
    assert "\f" in Path(result["text_path"]).read_text(encoding="utf-8")      # its own text, page by page
    forced = run_digitize(["process", searchable, "--out", str(tmp_path / "ocr"), "--json", "--force"], home)
    assert forced.returncode == 0
    [ocr] = json_lines(forced.stdout)
    assert not ocr["kept_as_is"] and [p["orientation"] for p in ocr["pages"]] == [0, 0, 0]


def test_paths_json_puts_everything_under_home(home):
    result = run_digitize(["paths", "--json"], home)
    import json
    paths = json.loads(result.stdout)
    assert set(paths) == {"home", "inbox", "archive", "quarantine", "work", "catalogue"}
    assert all(Path(value).is_relative_to(home) for value in paths.values())
