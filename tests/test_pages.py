"""Reading scans: the scan's own pixels from image PDFs, rendering where a page is more than one image."""
from __future__ import annotations

import numpy as np
import pikepdf

from digitize import pages
from tools import synth
from digitize.config import load_config

CONFIG = load_config({})


def test_scanned_pdf_page_gives_back_its_own_pixels(tmp_path):
    image = synth.render_prose(dpi=200)["image"]
    path = synth.write_pdf(tmp_path / "scan.pdf", [image], dpi=200, quality=95)
    info = pages.inspect(path, CONFIG)
    assert info.dpis == (200.0,)
    with pikepdf.open(path) as pdf:
        embedded = pikepdf.PdfImage(next(iter(pdf.pages[0].get_images().values()))).as_pil_image()
    assert np.array_equal(pages.load_page(info, 0, 60), np.asarray(embedded))


def test_rotated_pdf_page_is_rendered_as_a_viewer_shows_it(tmp_path):
    image = synth.render_prose(dpi=200)["image"]
    path = synth.write_pdf(tmp_path / "scan.pdf", [image], dpi=200)
    with pikepdf.open(path, allow_overwriting_input=True) as pdf:
        pdf.pages[0].obj.Rotate = 90
        pdf.save(path)
    page = pages.load_page(pages.inspect(path, CONFIG), 0, 60)
    assert page.shape[1] > page.shape[0]  # portrait paper shown turned: wider than tall


def test_resolution_from_metadata_else_from_paper_size(tmp_path):
    image = synth.render_prose(dpi=300)["image"]
    with_dpi = synth.write_image(tmp_path / "a.png", image, dpi=300)
    without = synth.write_image(tmp_path / "b.png", image, dpi=None)
    placeholder = tmp_path / "c.jpg"
    image.convert("L").save(placeholder, dpi=(72, 72))
    assert pages.inspect(with_dpi, CONFIG).dpi_known == (True,)
    for path in (without, placeholder):
        info = pages.inspect(path, CONFIG)
        assert info.dpi_known == (False,) and abs(info.dpis[0] - 300) < 5  # A4 at 300 dpi
