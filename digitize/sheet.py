"""Phone photos of a sheet: find the paper, warp it flat, even out the light.

A photo shows the sheet lying on something darker (a desk, a lap, a folder),
seen at an angle, lit from one side. The sheet is the largest bright region
whose outline is a convex quadrilateral that stays clear of the frame's edges
on every side; it is warped to a rectangle of A4/A5 proportions (1:√2, the
same for both), its light divided out, and it is given the resolution its
size implies as a sheet of paper. A flatbed scan shows paper up to the frame
edge (or a thin lid shadow along it) and is left alone; so is any image that
says its own resolution, which scanners do and phones do not.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import clean

# The detection runs on a copy this long on its longest side.
DETECT_SIDE = 800
# The sheet must cover this share of the frame (less: a document seen from afar, not read here)
# and leave at least MARGIN of the frame's size free on every side.
MIN_AREA, MAX_AREA = 0.15, 0.92
MARGIN = 0.01
# A scanner lid's shadow: paper square to the frame within this many degrees, bands thinner than this.
LID_SQUARE = 3.0
LID_BAND = 0.06
# Paper must be this much lighter than what surrounds it (grey levels).
MIN_CONTRAST = 40
SQRT2 = float(np.sqrt(2.0))
A4_LONG_INCHES = 297 / 25.4


@dataclass(frozen=True)
class Sheet:
    corners: np.ndarray  # 4×2 float32, full-resolution pixels: top-left, top-right, bottom-right, bottom-left
    contrast: float  # paper minus surround, grey levels


def _ordered(points: np.ndarray) -> np.ndarray:
    """Corners in the order top-left, top-right, bottom-right, bottom-left."""
    total, diff = points.sum(axis=1), points[:, 1] - points[:, 0]
    return np.float32([points[np.argmin(total)], points[np.argmin(diff)], points[np.argmax(total)],
                       points[np.argmax(diff)]])


def _lid_framed(quad: np.ndarray, width: int, height: int) -> bool:
    """A flatbed scan with the lid's shadow on every side: paper square to the frame (within
    LID_SQUARE degrees) and only a thin band (LID_BAND of the frame) around it. A photo of
    a sheet held that exactly is read as a scan, which loses nothing: the border mask
    takes such bands off."""
    ordered = _ordered(quad)
    for a, b in zip(ordered, np.roll(ordered, -1, axis=0)):
        dx, dy = abs(b[0] - a[0]), abs(b[1] - a[1])
        if np.degrees(np.arctan2(min(dx, dy), max(dx, dy))) > LID_SQUARE:
            return False
    xs, ys = ordered[:, 0], ordered[:, 1]
    bands = (xs.min() / width, ys.min() / height, 1 - xs.max() / width, 1 - ys.max() / height)
    return max(bands) < LID_BAND


def find_sheet(image: np.ndarray) -> Sheet | None:
    """The sheet of paper in a photo, or None when the image is not one (a scan, a close-up)."""
    grey = clean.to_grey(image)
    scale = DETECT_SIDE / max(grey.shape)
    small = cv2.resize(grey, (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (5, 5), 0)
    _, bright = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # Close the text into the paper: lines of text are darker than paper but narrow.
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8))
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    contour = max(contours, key=cv2.contourArea)
    height, width = small.shape
    area = cv2.contourArea(contour) / (height * width)
    if not MIN_AREA <= area <= MAX_AREA:
        return None
    hull = cv2.convexHull(contour)
    quad = None
    for share in (0.01, 0.02, 0.03, 0.05):
        approx = cv2.approxPolyDP(hull, share * cv2.arcLength(hull, True), True)
        if len(approx) == 4:
            quad = approx.reshape(4, 2).astype(np.float32)
            break
    if quad is None or not cv2.isContourConvex(quad.reshape(-1, 1, 2).astype(np.int32)):
        return None
    xs, ys = quad[:, 0], quad[:, 1]
    if xs.min() < MARGIN * width or ys.min() < MARGIN * height or xs.max() > (1 - MARGIN) * width \
            or ys.max() > (1 - MARGIN) * height:
        return None  # paper reaches the frame: a scan (or a sheet cut off), not left to guess
    if _lid_framed(quad, width, height):
        return None
    # The quadrilateral must really be the region found (not a hull over two blobs).
    if cv2.contourArea(contour) < 0.9 * cv2.contourArea(quad):
        return None
    inside = np.zeros_like(small)
    cv2.fillConvexPoly(inside, quad.astype(np.int32), 255)
    contrast = float(np.median(small[inside > 0])) - float(np.median(small[inside == 0]))
    if contrast < MIN_CONTRAST:
        return None
    return Sheet(_ordered(quad / scale), contrast)


def flatten_photo(image: np.ndarray, sheet: Sheet) -> np.ndarray:
    """The sheet warped to an upright-or-sideways rectangle of 1:√2 and its light divided out.

    The rectangle keeps the sheet's pixel count (its longest side as photographed), so
    no detail the photo has is thrown away and none is invented.
    """
    tl, tr, br, bl = sheet.corners
    across = (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2
    down = (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
    long_side = max(across, down)
    short_side = long_side / SQRT2
    width, height = (short_side, long_side) if down >= across else (long_side, short_side)
    width, height = int(round(width)), int(round(height))
    target = np.float32([(0, 0), (width - 1, 0), (width - 1, height - 1), (0, height - 1)])
    matrix = cv2.getPerspectiveTransform(sheet.corners, target)
    warped = cv2.warpPerspective(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
    return clean.flatten_light(warped, sheet_dpi(warped))


def sheet_dpi(sheet_image: np.ndarray) -> float:
    """The resolution of a flattened sheet taken as A4, the paper of nearly every dossier page."""
    return max(sheet_image.shape[:2]) / A4_LONG_INCHES
