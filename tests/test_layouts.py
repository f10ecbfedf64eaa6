"""Vendors' layouts through the real pipeline: rendered pages, real tesseract, the real
`digitize registry import` and `digitize process`, scored as `make eval` scores them."""
from __future__ import annotations

import random

from digitize import config
from tests.conftest import json_lines, run_digitize
from tools import evaluate, layouts, synth

# (layout, variant, whether the QR code and barcode survived): one page each, chosen so that
# every label family and signature arrangement is read from the text, and both the QR and the
# printed CCCD catch an impostor.
CASES = [
    ("mau01", "genuine", True),
    ("tiep-nhan", "genuine", False),
    ("trich-luc", "impostor", False),
    ("hen-tra", "genuine", False),
    ("bien-nhan", "genuine", False),
    ("ket-qua", "impostor", True),
]


def test_layouts_link_right_and_impostors_never(tmp_path, home):
    rng = random.Random(20241206)
    registry = []
    for agency in evaluate.LAYOUT_AGENCIES * 3:
        fields = synth.make_fields(rng.randrange(10**9), agency_code=agency)
        registry.append({**fields, "status": 4, "finished": None})
    headers = {field: names[0] for field, names in config.load_config()["registry"]["columns"].items()}
    synth.write_registry(tmp_path / "registry.csv", registry, headers)
    scans = tmp_path / "scans"
    scans.mkdir()
    rows = []
    for number, (name, variant, symbols) in enumerate(CASES):
        own, other = registry[2 * number], registry[2 * number + 1]
        printed = evaluate._impostor(rng, own, other) if variant == "impostor" else own
        page = layouts.LAYOUTS[name](printed, rng, evaluate.LINK_DPI)
        if not symbols:
            page = evaluate._blank_symbols(page, whole=True)
        page = synth.scan(page, rng.uniform(-1.5, 1.5), seed=number, noise=2.0)
        file = f"{name}.png"
        synth.write_image(scans / file, page["image"], evaluate.LINK_DPI)
        rows.append({"file": file, "category": name, "pages": 1,
                     "segments": [{"first_page": 1, "last_page": 1,
                                   "code": own["dossier_code"] if variant == "genuine" else None}]})
    imported = run_digitize(["registry", "import", str(tmp_path / "registry.csv"), "--json"], home)
    assert imported.returncode == 0, imported.stderr
    done = run_digitize(["process", str(scans), "--out", str(tmp_path / "out"), "--json"], home,
                        OMP_THREAD_LIMIT="1")
    results = {record["source"].rsplit("/", 1)[-1]: record for record in json_lines(done.stdout)}
    outcomes = {o["file"]: o["outcome"] for o in evaluate.score_links(rows, results)}
    expected = {f"{name}.png": "right" if variant == "genuine" else "review" for name, variant, _ in CASES}
    assert outcomes == expected
    # the impostors went to review because the person belongs to another dossier
    for name, variant, _ in CASES:
        if variant == "impostor":
            evidence = results[f"{name}.png"]["link"]["candidates"][0]["evidence"]
            assert any("citizen ID belongs to another dossier" in e for e in evidence)
