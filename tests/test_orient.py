"""Orientation and skew found from text geometry on real rendered pages at known angles."""
from __future__ import annotations

import numpy as np
import pytest

from digitize import clean, orient
from tools import synth


def _grey(page: dict) -> np.ndarray:
    return clean.to_grey(np.asarray(page["image"]))


def _angle_error(found: orient.PageAngle, truth: float) -> float:
    return (found.orientation + found.skew - truth + 180.0) % 360.0 - 180.0


@pytest.mark.parametrize("angle", [0.0, 0.6, -2.7, 4.9, -9.3, 14.2, -27.5, 39.0, 44.0, 90.0, 181.3, 268.2, -93.0])
def test_orientation_and_skew_found_on_a_turned_page(prose_page, angle):
    scanned = synth.scan(prose_page, angle=angle, seed=3)
    found = orient.find_page_angle(_grey(scanned), prose_page["dpi"])
    assert found.orientation == scanned["orientation"]
    assert abs(_angle_error(found, angle)) < 0.1


@pytest.mark.parametrize("damage", [
    {"border": "lrtb"},
    {"speckle": 0.01},
    {"noise": 18.0, "blur": 1.0},
    {"jpeg_quality": 25},
    {"illumination": 0.5},
])
def test_skew_survives_scanner_damage(prose_page, damage):
    scanned = synth.scan(prose_page, angle=-6.4, seed=5, **damage)
    found = orient.find_page_angle(_grey(scanned), prose_page["dpi"])
    assert found.orientation == 0
    assert abs(found.skew + 6.4) < 0.1


def test_receipt_with_qr_and_barcode_is_found_upside_down():
    page = synth.render_receipt(synth.make_fields(4), dpi=200)
    scanned = synth.scan(page, angle=182.5, seed=1, border="l")
    found = orient.find_page_angle(_grey(scanned), 200)
    assert (found.orientation, round(found.skew, 1)) == (180, 2.5)


def test_blank_page_has_no_angle():
    blank = np.full((2339, 1654), 255, np.uint8)
    assert orient.find_page_angle(blank, 200) == orient.PageAngle(0, 0.0, 0.0)


def test_rotate_keeps_every_pixel_and_quarter_turns_are_exact():
    image = np.zeros((100, 200), np.uint8)
    image[10, 20] = 255
    turned = orient.rotate(image, 90)
    assert turned.shape == (200, 100) and turned.sum() == 255
    skewed = orient.rotate(np.full((100, 200), 7, np.uint8), 30, fill=255)
    assert skewed.shape[0] > 100 and skewed.shape[1] > 200
