"""The OCR copy of a page: speckle removed only where there is speckle, lid borders painted white."""
from __future__ import annotations

import numpy as np

from digitize import clean
from tools import synth


def _grey(page: dict) -> np.ndarray:
    return clean.to_grey(np.asarray(page["image"]))


def test_median_filter_runs_only_on_speckled_pages():
    page = synth.render_prose(dpi=200)
    clean_grey = _grey(page)
    speckled_grey = _grey(synth.scan(page, speckle=0.002, seed=1))
    assert clean.speckle_share(clean_grey) < clean.SPECKLE_SHARE < clean.speckle_share(speckled_grey)
    # A clean 200 dpi page keeps its strokes: a median filter would thin them. Only the paper
    # (and the palest anti-aliasing, within PAPER_NOISE of it) is made pure white.
    kept = clean.ocr_image(clean_grey, denoise=True, remove_border=False)
    ink = clean_grey < 255 - clean.PAPER_NOISE
    assert np.array_equal(kept[ink], clean_grey[ink]) and (kept[~ink] == 255).all()
    despeckled = clean.ocr_image(speckled_grey, denoise=True, remove_border=False)
    assert clean.speckle_share(despeckled) < clean.SPECKLE_SHARE


def test_dark_lid_border_is_painted_white_and_text_kept():
    page = synth.render_prose(dpi=200)
    bordered = _grey(synth.scan(page, border="lt", seed=2))
    cleaned = clean.ocr_image(bordered, denoise=False, remove_border=True)
    assert bordered[:, :5].mean() < 100 and cleaned[:, :5].mean() > 250
    # The text in the middle of the page is left alone (its paper made white).
    h, w = cleaned.shape
    middle = (slice(h // 3, 2 * h // 3), slice(w // 4, 3 * w // 4))
    ink = bordered[middle] < 255 - clean.PAPER_NOISE
    assert ink.sum() > 1000 and np.array_equal(cleaned[middle][ink], bordered[middle][ink])


def test_archive_keeps_the_scans_colour_unless_the_pipeline_says_grey():
    """An RGB scan stays RGB even on near-grey paper (the rules want a colour image); a grey scan stays grey."""
    grey_looking = np.asarray(synth.render_prose(dpi=100, color=True)["image"])
    assert clean.archive_image(grey_looking, keep_colour=True).ndim == 3
    seal = np.asarray(synth.render_decision(synth.make_fields(1), dpi=100, color=True)["image"])
    assert np.array_equal(clean.archive_image(seal, keep_colour=True), seal)
    assert clean.archive_image(seal, keep_colour=False).ndim == 2
    scanner_grey = np.asarray(synth.render_prose(dpi=100)["image"])
    assert clean.archive_image(scanner_grey, keep_colour=True).ndim == 2
