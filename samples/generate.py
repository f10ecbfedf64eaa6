"""Write the committed sample scans, their ground truth and a small dossier registry.

Run from the repository root: .venv/bin/python -m samples.generate  (deterministic; rewrites the files in samples/).
Text is the project's own (tools.synth.SAMPLE_PARAGRAPHS and generated fields).
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from digitize import config
from tools import synth

HERE = Path(__file__).resolve().parent
DPI = 200
STAMP = datetime(2024, 12, 20, 8, 0, tzinfo=timezone.utc).timestamp()  # fixed PDF dates: regenerating changes no byte
# (received, sequence, status, days until finished or None) per dossier; statuses as in DOMAIN.md.
DOSSIERS = [
    (datetime(2024, 10, 3, 9, 32), 12, 10, 1),
    (datetime(2024, 10, 8, 14, 5), 3, 10, 3),
    (datetime(2024, 10, 15, 8, 10), 7, 9, 5),
    (datetime(2024, 10, 21, 10, 45), 21, 10, 2),
    (datetime(2024, 10, 29, 15, 20), 4, 4, None),
    (datetime(2024, 11, 5, 8, 40), 15, 10, 6),
    (datetime(2024, 11, 12, 9, 0), 1, 9, 1),
    (datetime(2024, 11, 12, 9, 25), 2, 5, None),
    (datetime(2024, 11, 26, 13, 50), 9, 10, 3),
    (datetime(2024, 12, 3, 7, 45), 5, 4, None),
    (datetime(2024, 12, 10, 16, 15), 18, 3, 1),
    (datetime(2024, 12, 18, 10, 5), 6, 2, None),
]


def dossiers() -> list[dict]:
    agency = config.load_config()["office"]["agency_code"]
    out = []
    for seed, (received, sequence, status, took) in enumerate(DOSSIERS, start=100):
        fields = synth.make_fields(seed, agency_code=agency, received=received, sequence=sequence)
        fields["status"] = status
        fields["finished"] = (received + timedelta(days=took)).date() if took is not None else None
        out.append(fields)
    return out


def page_truth(page: dict) -> dict:
    return {key: page[key] for key in ("kind", "dpi", "paper", "angle", "orientation", "skew", "words", "codes",
                                       "fields")}


def samples(ds: list[dict]) -> list[tuple[str, list[dict], bool, str | None, str]]:
    """(file name, scanned pages, dpi metadata written?, the dossier it belongs to, how it can be linked:
    qr / text / filename, "review" when the page has no code (only the applicant's CCCD or name), or
    "none" for a page that belongs to no dossier)."""
    d1, d2, d3, d4, d5, d6, d7, d8 = ds[:8]
    return [
        ("receipt-qr.pdf", [synth.scan(synth.render_receipt(d1, dpi=DPI), 0.0, seed=1, noise=2)],
         True, d1["dossier_code"], "qr"),
        ("receipt-skew7-nodpi.jpg", [synth.scan(synth.render_receipt(d2, dpi=DPI), 7.0, seed=2, noise=3,
                                                blur=0.5)], False, d2["dossier_code"], "qr"),
        ("declaration-2pages-rot90.tif",
         [synth.scan(synth.render_declaration(d3, dpi=DPI, part=k, parts=2), 90.0, seed=3 + k) for k in (1, 2)],
         True, d3["dossier_code"], "review"),
        ("decision-rot180-noise.png", [synth.scan(synth.render_decision(d4, dpi=DPI), 180.0, seed=5,
                                                  speckle=0.0015)], True, d4["dossier_code"], "text"),
        ("notice-skew-3-border.png", [synth.scan(synth.render_prose(dpi=DPI), -3.0, seed=6, border="lb",
                                                 illumination=0.15)], True, None, "none"),
        (f"{d5['dossier_code']}.jpg", [synth.scan(synth.render_declaration(d5, dpi=DPI), 0.8, seed=7, noise=3)],
         True, d5["dossier_code"], "filename"),
        ("scan_20241106_0001.jpg", [synth.scan(synth.render_decision(d6, dpi=DPI, cite_code=False), -1.2, seed=8,
                                               noise=3)], True, d6["dossier_code"], "review"),
        ("feed-2-dossiers.pdf",
         [synth.scan(synth.render_receipt(d7, dpi=DPI), 0.4, seed=9),
          synth.scan(synth.render_declaration(d7, dpi=DPI), -0.6, seed=10),
          synth.scan(synth.render_receipt(d8, dpi=DPI), 1.1, seed=11),
          synth.scan(synth.render_declaration(d8, dpi=DPI), 0.3, seed=12)],
         True, d7["dossier_code"], "qr"),
    ]


def write_registry(path: Path, ds: list[dict]) -> None:
    headers = {field: names[0] for field, names in config.load_config()["registry"]["columns"].items()}
    synth.write_registry(path, ds, headers)


def main(out: Path = HERE) -> int:
    ds = dossiers()
    truth = {}
    for name, pages, with_dpi, dossier, link in samples(ds):
        synth.write_pages(out / name, [page["image"] for page in pages], DPI if with_dpi else None, quality=80,
                           timestamp=STAMP)
        truth[name] = {"dpi_metadata": with_dpi, "dossier_code": dossier, "link": link,
                       "dossier_codes": [c for c in dict.fromkeys(p["fields"].get("dossier_code") for p in pages)
                                         if c],
                       "pages": [page_truth(page) for page in pages]}
    (out / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    write_registry(out / "registry.csv", ds)
    for path in sorted(out.iterdir()):
        if path.suffix != ".py":
            print(f"{path.stat().st_size / 1024:8.0f} KB  {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
