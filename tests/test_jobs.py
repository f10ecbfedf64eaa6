"""One path from engine to catalogue: names never collide, reruns are versions, feeds stay apart."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pikepdf
import pytest

from digitize import store
from digitize.config import load_config, resolve_paths
from digitize.models import DONE, FAILED, DocumentResult, PageReading, Part
from tools import synth
from tools import REPO_ROOT

from .conftest import corpus_paragraphs, json_lines, run_digitize

# Every test here runs on the SQLite catalogue and on a real PostgreSQL one.
pytestmark = pytest.mark.usefixtures("catalogue_backend")

SAMPLES = REPO_ROOT / "samples"


def _scan(path: Path, seed: int) -> Path:
    page = synth.render_prose(corpus_paragraphs("van-thu.txt", 2 * seed, 1), dpi=200, paper="A5", header=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    return synth.write_image(path, page["image"], dpi=200)


def _catalogue(home: Path):
    return store.connect(resolve_paths(load_config({"DIGITIZE_HOME": str(home)}))["catalogue"])


def test_two_scans_with_one_name_keep_two_outputs(tmp_path, home):
    # Scanner names like scan_0001 repeat every day: the second must never replace the first.
    first, second = _scan(tmp_path / "a" / "scan.png", 1), _scan(tmp_path / "b" / "scan.png", 2)
    outputs = []
    for scan in (first, second):
        result = run_digitize(["process", str(scan), "--json"], home)
        assert result.returncode == 0, result.stderr
        outputs.append(Path(json_lines(result.stdout)[0]["output"]))
    assert outputs[0] != outputs[1] and all(output.exists() for output in outputs)
    conn = _catalogue(home)
    rows = store.list_documents(conn)
    assert sorted(row["output"] for row in rows) == sorted(map(str, outputs))
    for row in rows:
        with pikepdf.open(row["output"]) as pdf:  # each PDF is the one of its own source
            assert str(pdf.docinfo["/Sha256"]) == row["sha256"]
    # Processing the first again is a new version of it at the same place, not a third file.
    again = json_lines(run_digitize(["process", str(first), "--json"], home).stdout)[0]
    assert Path(again["output"]) == outputs[0]
    assert len(store.list_documents(conn)) == 2
    [first_row] = [row for row in store.list_documents(conn) if row["output"] == str(outputs[0])]
    assert len(store.document_versions(conn, first_row["id"])) == 2


def test_rerun_from_another_folder_keeps_original_and_officer(tmp_path):
    home = tmp_path / "home"
    inbox = home / "inbox" / "Nguyễn Văn An"
    scan = _scan(tmp_path / "giay to.png", 3)
    inbox.mkdir(parents=True)
    shutil.copy(scan, inbox / "giay to.png")
    assert run_digitize(["watch", "--once"], home).returncode == 0
    conn = _catalogue(home)
    [row] = store.list_documents(conn)
    assert row["officer"] == "Nguyễn Văn An" and Path(row["original"]).exists()
    # The IT officer processes a copy of the same scan from elsewhere: a new version, nothing lost.
    result = run_digitize(["process", str(scan), "--json"], home)
    assert result.returncode == 0, result.stderr
    [after] = store.list_documents(conn)
    assert (after["officer"], after["original"], after["output"]) == (row["officer"], row["original"], row["output"])
    assert Path(after["output"]).exists() and len(store.document_versions(conn, row["id"])) == 2


def test_a_failed_run_never_replaces_a_good_row(tmp_path):
    conn = store.connect(tmp_path / "catalogue.sqlite")
    pipeline = {"name": "intake", "hash": "h"}
    good = DocumentResult("/in/a.png", "a" * 64, DONE, (PageReading(0, 0.0, 90.0, "chữ"),),
                          (Part(0, 1, 1, "/archive/a.pdf", "/archive/a.txt"),))
    [document_id] = store.record_result(conn, good, pipeline, officer="An", original="/kept/a.png")
    bad = DocumentResult("/elsewhere/a.png", "a" * 64, FAILED, error="đĩa đầy / disk full", exit_code=5)
    store.record_result(conn, bad, pipeline)
    row = store.get_document(conn, document_id)
    assert (row["status"], row["output"], row["officer"], row["original"], row["source"]) == \
        ("done", "/archive/a.pdf", "An", "/kept/a.png", "/in/a.png")
    assert [page["text"] for page in store.get_pages(conn, document_id)] == ["chữ"]
    # A file that only ever failed keeps its latest error.
    store.record_result(conn, DocumentResult("/in/b.png", "b" * 64, FAILED, error="x / x", exit_code=4), pipeline)
    store.record_result(conn, DocumentResult("/in/b.png", "b" * 64, FAILED, error="y / y", exit_code=7), pipeline)
    assert [row["error"] for row in store.documents_by_sha(conn, "b" * 64)] == ["y / y"]


def test_reprocessing_a_feed_files_each_dossier_apart(tmp_path, home):
    registry = run_digitize(["registry", "import", str(SAMPLES / "registry.csv")], home)
    assert registry.returncode == 0, registry.stderr
    feed = shutil.copy(SAMPLES / "feed-2-dossiers.pdf", tmp_path / "feed-2-dossiers.pdf")
    assert run_digitize(["process", str(feed)], home).returncode == 0
    conn = _catalogue(home)

    def parts() -> list[dict]:
        return sorted(store.list_documents(conn), key=lambda row: row["part"])

    before = parts()
    assert len(before) == 2 and before[0]["dossier_code"] != before[1]["dossier_code"]
    texts = {row["part"]: [p["text"] for p in store.get_pages(conn, row["id"])] for row in before}
    again = run_digitize(["reprocess", "--source", "*feed*", "--force", "--json"], home)
    assert again.returncode == 0, again.stderr
    after = parts()
    for old, new in zip(before, after):
        assert new["output"] == old["output"] and Path(new["output"]).parent.name == new["dossier_code"]
        assert new["page_count"] == old["page_count"]
        assert [p["text"] for p in store.get_pages(conn, new["id"])] == texts[new["part"]]
        with pikepdf.open(new["output"]) as pdf:
            assert len(pdf.pages) == new["page_count"]
    assert all(len(store.document_versions(conn, row["id"])) == 2 for row in after)


def test_json_output_masks_a_cccd_in_the_file_name(tmp_path, home):
    scan = _scan(tmp_path / "CCCD 079123456789.png", 4)
    result = run_digitize(["process", str(scan), "--json"], home)
    assert result.returncode == 0, result.stderr
    assert "079123456789" not in result.stdout and "079******789" in result.stdout
    assert json.loads(result.stdout)["status"] == "done"


def test_a_file_name_that_is_not_utf8_is_processed_and_watched(tmp_path, home):
    # SMB shares with a legacy code page hand over bytes that are not UTF-8.
    odd = os.fsdecode(b"scan \xff\xfe.png")
    scan = _scan(tmp_path / odd, 5)
    result = run_digitize(["process", str(scan), "--json"], home)
    assert result.returncode == 0, result.stderr
    assert "\ufffd" in json.loads(result.stdout)["source"]
    watched = tmp_path / "watched"
    (watched / "inbox" / "máy 2").mkdir(parents=True)
    shutil.copy(_scan(tmp_path / "other.png", 6), watched / "inbox" / "máy 2" / odd)
    run = run_digitize(["watch", "--once"], watched)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    # (On PostgreSQL both homes share the test's database: the watcher's row is the officer's.)
    [row] = [row for row in store.list_documents(_catalogue(watched)) if row["officer"] == "máy 2"]
    assert row["status"] == "done" and Path(row["original"]).exists() and "\ufffd" in row["source"]


def test_two_identical_files_in_one_batch_with_out_keep_both_outputs(tmp_path, home):
    first = _scan(tmp_path / "in" / "a.png", 7)
    shutil.copy(first, tmp_path / "in" / "b.png")
    result = run_digitize(["process", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--json"], home)
    assert result.returncode == 0, result.stderr
    outputs = [Path(line["output"]) for line in json_lines(result.stdout)]
    assert len(outputs) == 2 and all(output.exists() for output in outputs)
