"""What keeping the scan's colour costs: JPEG bytes per page, grey against colour encodings.

    python -m tools.colour_cost [--dpi 300]

Pages are rendered in colour (tinted paper, red seal, noise as a scanner adds)
and encoded as the engine does (OpenCV JPEG). Two splits: `tune` (decisions and
prose, seeds 0-2), on which the quality and chroma subsampling were chosen, and
`held-out` (receipts and declarations, other seeds and damage), only reported.
"""
from __future__ import annotations

import argparse
import json
import statistics

import cv2
import numpy as np

from tools import synth

ENCODINGS = {
    "grey q85": (False, 85, None),
    "colour q85 4:4:4": (True, 85, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444),
    "colour q85 4:2:0": (True, 85, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420),
    "colour q80 4:2:0": (True, 80, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420),
    "colour q75 4:2:0": (True, 75, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420),
}


def _pages(split: str, dpi: int) -> list[np.ndarray]:
    if split == "tune":
        pages = [synth.render_decision(synth.make_fields(seed), dpi=dpi, color=True) for seed in range(3)]
        pages += [synth.render_prose(dpi=dpi, color=True)]
        damage = {"noise": 3.0, "illumination": 0.1}
        seeds = range(4)
    else:
        pages = [synth.render_receipt(synth.make_fields(seed), dpi=dpi, color=True) for seed in (101, 102)]
        pages += [synth.render_declaration(synth.make_fields(seed), dpi=dpi, color=True) for seed in (103, 104)]
        damage = {"noise": 5.0, "illumination": 0.2, "blur": 0.6}
        seeds = range(100, 104)
    return [np.asarray(synth.scan(page, seed=seed, **damage)["image"].convert("RGB"))
            for page, seed in zip(pages, seeds)]


def encoded_size(rgb: np.ndarray, colour: bool, quality: int, sampling: int | None) -> int:
    if not colour:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), [cv2.IMWRITE_JPEG_QUALITY, quality])
    else:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling])
    assert ok
    return len(data)


def measure(dpi: int) -> dict:
    report = {}
    for split in ("tune", "held-out"):
        pages = _pages(split, dpi)
        report[split] = {name: round(statistics.mean(encoded_size(page, *spec) for page in pages) / 1024)
                         for name, spec in ENCODINGS.items()}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dpi", type=int, default=300)
    args = parser.parse_args()
    print(json.dumps({"dpi": args.dpi, "kib_per_page": measure(args.dpi)}, indent=1))


if __name__ == "__main__":
    main()
