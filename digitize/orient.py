"""Orientation (quarter turns) and skew of a page, from its text geometry.

No OCR pass is spent here: the text-line direction comes from a projection
profile search over ink pixels (Postl's method), first coarse over the half
circle on a small copy, then fine on a larger one; which way is up comes
from typography: in upright Latin-script text (and more so in Vietnamese,
with its marks above the letters) more ink rises above the x-height band of
a line than hangs below it.

Angles are counter-clockwise as seen on screen: a page whose content was
turned by `orientation + skew` degrees is made upright by turning it back.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import clean

FINE_DPI = 150
MAX_POINTS = 400_000


@dataclass(frozen=True)
class PageAngle:
    orientation: int  # 0, 90, 180, 270: counter-clockwise quarter turn found on the scan
    skew: float  # residual counter-clockwise angle of the text lines, degrees in [-45, 45)
    upright_score: float  # > 0: typography says the chosen orientation is upright


def _scaled(gray: np.ndarray, dpi: float, target_dpi: float) -> np.ndarray:
    scale = min(1.0, target_dpi / dpi)
    if scale >= 0.999:
        return gray
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def text_mask(gray: np.ndarray, dpi: float) -> np.ndarray:
    """Binary mask (uint8 0/1) of glyph-sized ink: no borders, rules, blobs or speckle.

    One global threshold splits ink from paper only on paper of one tone: a grey or
    yellowed sheet beside a white lid, or light falling off across a photocopy, is
    divided by its background first (white, evenly lit pages skip this).
    """
    back = clean.background(gray, dpi)
    if not clean.is_flat_white(back):
        gray = clean.flatten(gray, back)
    blurred = cv2.medianBlur(gray, 3)
    _, ink = cv2.threshold(blurred, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    height, width = gray.shape
    px_per_mm = dpi / 25.4
    x, y, w, h, area = (stats[:, i] for i in range(5))
    touches_edge = (x == 0) | (y == 0) | (x + w >= width) | (y + h >= height)
    # Glyphs are 0.15–12 mm tall and not wider than a word run; scanner-lid
    # borders touch the edge, speckle is tiny, photos and QR codes are big.
    glyph_like = (
        (area >= max(2, (0.12 * px_per_mm) ** 2))
        & (h <= 12 * px_per_mm)
        & (w <= 40 * px_per_mm)
        & ~touches_edge
    )
    glyph_like[0] = False
    return glyph_like[labels].astype(np.uint8)


def _points(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.nonzero(mask)
    if len(xs) > MAX_POINTS:
        # A regular stride keeps the profile's shape and bounds the cost.
        step = len(xs) // MAX_POINTS + 1
        xs, ys = xs[::step], ys[::step]
    cx, cy = mask.shape[1] / 2, mask.shape[0] / 2
    return xs.astype(np.float64) - cx, ys.astype(np.float64) - cy


def _profile_energy(xs: np.ndarray, ys: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """Sum of squared row counts after projecting ink along each candidate line angle."""
    energies = np.empty(len(angles_deg))
    for i, angle in enumerate(np.radians(angles_deg)):
        rows = ys * np.cos(angle) + xs * np.sin(angle)
        rows = np.rint(rows - rows.min()).astype(np.int64)
        counts = np.bincount(rows)
        energies[i] = np.dot(counts, counts)
    return energies


def _refine(xs: np.ndarray, ys: np.ndarray, centre: float, half_width: float, step: float) -> float:
    angles = np.arange(centre - half_width, centre + half_width + step / 2, step)
    energies = _profile_energy(xs, ys, angles)
    best = int(np.argmax(energies))
    if 0 < best < len(angles) - 1:
        # Parabola through the peak and its neighbours: sub-step precision.
        left, mid, right = energies[best - 1 : best + 2]
        denominator = left - 2 * mid + right
        if denominator < 0:
            return float(angles[best] + step * 0.5 * (left - right) / denominator)
    return float(angles[best])


def line_angle(fine: np.ndarray) -> float | None:
    """Counter-clockwise angle of the text lines in [-90, 90), or None on a page with no text.

    `fine` is the text mask at FINE_DPI; the coarse search runs on a third of it.
    """
    coarse = cv2.resize(fine, (max(1, fine.shape[1] // 3), max(1, fine.shape[0] // 3)),
                        interpolation=cv2.INTER_AREA) > 0
    xs, ys = _points(coarse)
    if len(xs) < 50:
        return None
    angles = np.arange(-90.0, 90.0, 1.0)
    angle = float(angles[int(np.argmax(_profile_energy(xs, ys, angles)))])
    xs, ys = _points(fine)
    angle = _refine(xs, ys, angle, 1.5, 0.25)
    angle = _refine(xs, ys, angle, 0.3, 0.02)
    return (angle + 90.0) % 180.0 - 90.0


def rotate(image: np.ndarray, angle: float, fill: int | tuple = 255) -> np.ndarray:
    """Turn an image counter-clockwise by `angle` degrees, canvas grown to keep every pixel."""
    quarter = round(angle / 90.0)
    if abs(angle - 90.0 * quarter) < 1e-6:
        return np.ascontiguousarray(np.rot90(image, quarter % 4))
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_width = int(np.ceil(height * sin + width * cos))
    new_height = int(np.ceil(height * cos + width * sin))
    matrix[0, 2] += new_width / 2 - width / 2
    matrix[1, 2] += new_height / 2 - height / 2
    if image.ndim == 3 and not isinstance(fill, tuple):
        fill = (fill,) * image.shape[2]
    return cv2.warpAffine(
        image, matrix, (new_width, new_height), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=fill,
    )


def upright_score(mask: np.ndarray) -> float:
    """(ink above the x-height band − ink below it) / both, over all text lines.

    Positive on upright text, negative upside down.
    """
    profile = mask.sum(axis=1).astype(np.float64)
    if profile.max() <= 0:
        return 0.0
    has_ink = profile > 0.02 * profile.max()
    above = below = 0.0
    row, rows = 0, len(profile)
    while row < rows:
        if not has_ink[row]:
            row += 1
            continue
        start = row
        while row < rows and has_ink[row]:
            row += 1
        band = profile[start:row]
        if len(band) < 4:
            continue
        core = np.nonzero(band >= 0.5 * band.max())[0]
        above += band[: core[0]].sum()
        below += band[core[-1] + 1 :].sum()
    total = above + below
    return 0.0 if total == 0 else (above - below) / total


def find_page_angle(gray: np.ndarray, dpi: float) -> PageAngle:
    """Orientation and skew of a grey page image at `dpi`."""
    fine = text_mask(_scaled(gray, dpi, FINE_DPI), min(dpi, FINE_DPI))
    angle = line_angle(fine)
    if angle is None:
        return PageAngle(0, 0.0, 0.0)
    skew = (angle + 45.0) % 90.0 - 45.0
    # Lines near horizontal: upright or upside down; near vertical: a quarter turn either way.
    first = 0 if abs(angle) < 45.0 else 90
    straightened = rotate(fine * 255, -(first + skew), fill=0) > 127
    score = upright_score(straightened.astype(np.uint8))
    if score < 0:
        return PageAngle((first + 180) % 360, round(skew, 3), -score)
    return PageAngle(first, round(skew, 3), score)
