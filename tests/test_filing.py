"""A link decided after processing moves the PDF: into its dossier's folder, or out of it."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from digitize import store
from tools import synth
from digitize.config import load_config, resolve_paths

from .conftest import json_lines, run_digitize

# Every test here runs on the SQLite catalogue and on a real PostgreSQL one.
pytestmark = pytest.mark.usefixtures("catalogue_backend")


def _registry_csv(path: Path, fields: dict) -> Path:
    headers = {key: aliases[0] for key, aliases in load_config({})["registry"]["columns"].items()}
    return synth.write_registry(path, [{**fields, "status": 4, "finished": None}], headers)


def test_late_import_files_the_waiting_scan_and_manual_decisions_move_it(tmp_path, home):
    fields = synth.make_fields(11)
    receipt = synth.render_receipt(fields, dpi=200)
    scan = synth.write_image(tmp_path / "bien nhan.png", receipt["image"], dpi=200)
    archive = resolve_paths(load_config({"DIGITIZE_HOME": str(home)}))["archive"]
    code = fields["dossier_code"]

    # Processed before the registry knows the dossier: a well-formed code waits in review.
    [result] = json_lines(run_digitize(["process", str(scan), "--json"], home).stdout)
    assert result["link"]["status"] == "review" and result["dossier"] is None
    waiting = Path(result["output"])
    taken = datetime.now()
    assert waiting == archive / f"{taken:%Y}" / f"{taken:%m}" / "bien nhan.pdf" and waiting.exists()

    # The import brings the dossier in: the scan links by itself and moves into the dossier's folder.
    imported = run_digitize(["registry", "import", str(_registry_csv(tmp_path / "so.csv", fields)), "--json"],
                            home)
    assert json_lines(imported.stdout)[0]["relinked"][0]["dossier"] == code
    conn = store.connect(archive.parent / "catalogue.sqlite")
    [document] = store.list_documents(conn)
    filed = Path(document["output"])
    quarter = f"Q{(int(code.split('-')[1][2:4]) - 1) // 3 + 1}"
    assert filed.parent == archive / f"20{code.split('-')[1][:2]}" / quarter / code
    assert filed.exists() and filed.with_suffix(".txt").exists() and not waiting.exists()

    # Unlinked by hand: out of the dossier's folder. Linked by hand again: back in.
    assert run_digitize(["unlink", str(document["id"])], home).returncode == 0
    unfiled = Path(store.get_document(conn, document["id"])["output"])
    assert unfiled == archive / "unfiled" / filed.name and unfiled.exists() and not filed.exists()
    assert run_digitize(["link", str(document["id"]), code], home).returncode == 0
    refiled = store.get_document(conn, document["id"])
    assert Path(refiled["output"]) == filed and filed.exists()
    assert refiled["link_method"] == "manual"
