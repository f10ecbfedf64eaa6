"""`digitize reprocess` on a real batch: killed and resumed, twice = once, atomic replacement, manual links."""
from __future__ import annotations

import os
import signal
import subprocess
from datetime import date
from pathlib import Path

import pikepdf
import pytest

from digitize import config as site_config, registry, store
from tools import synth

from .conftest import DIGITIZE, corpus_paragraphs, json_lines, run_digitize

SCANS = 4


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Four one-page A5 scans (200 dpi, a few lines of Vietnamese, slightly skewed) processed once."""
    folder = tmp_path_factory.mktemp("reprocess")
    inbox, home = folder / "in", folder / "home"
    inbox.mkdir()
    for number in range(SCANS):
        page = synth.render_prose(corpus_paragraphs("van-thu.txt", 3 * number, 2), dpi=200, paper="A5",
                                  header=False)
        image = synth.scan(page, angle=(0.0, 1.5, -2.0, 0.7)[number], seed=number)["image"]
        synth.write_image(inbox / f"scan-{number}.png", image, dpi=200)
    result = run_digitize(["process", str(inbox), "--json"], home)
    assert result.returncode == 0, result.stderr
    assert len(json_lines(result.stdout)) == SCANS
    return {"home": home, "inbox": inbox, "catalogue": home / "catalogue.sqlite", "archive": home / "archive"}


def _documents(batch) -> dict[str, dict]:
    conn = store.connect(batch["catalogue"])
    return {Path(d["source"]).name: d for d in store.list_documents(conn)}


def _versions(batch) -> dict[str, int]:
    conn = store.connect(batch["catalogue"])
    return {name: len(store.document_versions(conn, d["id"])) for name, d in _documents(batch).items()}


def _row_counts(batch) -> tuple[int, int, int]:
    conn = store.connect(batch["catalogue"])
    return tuple(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                 for table in ("documents", "pages", "document_versions"))


def test_dry_run_shows_pages_and_estimate_and_changes_nothing(batch):
    before = _versions(batch), {p.name: p.stat().st_mtime_ns for p in batch["archive"].iterdir()}
    result = run_digitize(["reprocess", "--all", "--dry-run", "--json"], batch["home"])
    assert result.returncode == 0, result.stderr
    [plan] = json_lines(result.stdout)
    assert plan["event"] == "plan" and len(plan["documents"]) == SCANS and plan["pages"] == SCANS
    assert plan["estimate_seconds"] >= 0 and plan["seconds_per_page_per_worker"] > 0
    assert all(d["original_present"] and d["target_pipeline"] == "intake" for d in plan["documents"])
    assert (_versions(batch), {p.name: p.stat().st_mtime_ns for p in batch["archive"].iterdir()}) == before


@pytest.mark.parametrize("selectors", [
    ["--dossier", "000.00.06.H56-241029-0999"],
    ["--source", "*/no-such-folder/*"],
    ["--status", "review"],
    ["--made-by-older"],  # everything was made by the current intake definition
    ["--all", "--from", "2001-01-01", "--to", "2001-12-31"],
])
def test_selectors_matching_nothing_say_so_and_exit_0(batch, selectors):
    before = _row_counts(batch)
    result = run_digitize(["reprocess", *selectors], batch["home"])
    assert result.returncode == 0, result.stderr
    assert "No documents match" in result.stdout
    assert _row_counts(batch) == before


def test_selectors_combine(batch):
    result = run_digitize(["reprocess", "--made-by-older", "--pipeline", "fast", "--source", "*/scan-2.png",
                           "--dry-run", "--json"], batch["home"])
    [plan] = json_lines(result.stdout)
    assert [Path(d["source"]).name for d in plan["documents"]] == ["scan-2.png"]
    assert plan["documents"][0]["target_pipeline"] == "fast"


def test_no_selector_is_refused(batch):
    result = run_digitize(["reprocess"], batch["home"])
    assert result.returncode == 2
    assert "--all" in result.stderr


def test_killed_run_resumes_without_redoing_and_twice_is_once(batch):
    before_versions = _versions(batch)
    inodes = {name: Path(d["output"]).stat().st_ino for name, d in _documents(batch).items()}
    command = [*DIGITIZE, "reprocess", "--all", "--workers", "1", "--json"]
    environment = {**os.environ, "DIGITIZE_HOME": str(batch["home"])}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environment,
                               start_new_session=True, cwd=Path(__file__).resolve().parents[1])
    first = json_lines(process.stdout.readline())
    os.killpg(process.pid, signal.SIGKILL)  # the whole tree, workers included, as a power cut would
    process.wait(timeout=30)
    process.stdout.close()
    assert first and first[0]["status"] == "done"
    finished_before_kill = Path(first[0]["source"]).name
    after_kill = _versions(batch)
    redone = {name for name in after_kill if after_kill[name] > before_versions[name]}
    assert finished_before_kill in redone and len(redone) < SCANS

    resumed = run_digitize(["reprocess", "--all", "--workers", "1", "--json"], batch["home"])
    assert resumed.returncode == 0, resumed.stderr
    lines = json_lines(resumed.stdout)
    assert {Path(line["source"]).name for line in lines if line["event"] == "document"} == set(after_kill) - redone
    assert lines[-1]["event"] == "summary" and lines[-1]["done"] == SCANS - len(redone)
    # Every document got exactly one new version: the finished ones were not redone.
    assert _versions(batch) == {name: count + 1 for name, count in before_versions.items()}

    # Outputs were replaced by rename (new inode), reopen cleanly, and no temp or staging file is left.
    for name, document in _documents(batch).items():
        output = Path(document["output"])
        assert output.stat().st_ino != inodes[name]
        with pikepdf.open(output) as pdf:
            assert len(pdf.pages) == 1
        text = Path(document["text_path"]).read_text(encoding="utf-8")
        assert len(text.split()) > 10
    assert not [p.name for p in batch["archive"].iterdir() if p.name.startswith(".")]

    # Twice = once: the same command again changes nothing.
    counts, outputs = _row_counts(batch), {p.name: p.stat().st_ino for p in batch["archive"].iterdir()}
    again = run_digitize(["reprocess", "--all", "--json"], batch["home"])
    assert again.returncode == 0 and json_lines(again.stdout)[-1]["already_done"] == SCANS
    assert _row_counts(batch) == counts
    assert {p.name: p.stat().st_ino for p in batch["archive"].iterdir()} == outputs


def test_manual_links_are_never_overwritten(batch, tmp_path):
    conn = store.connect(batch["catalogue"])
    manual = _documents(batch)["scan-1.png"]
    # A registry to link to: a rule that guessed (one dossier, the same day, any name) would link the others.
    export = tmp_path / "so.csv"
    export.write_text("Mã hồ sơ;Chủ hồ sơ;Ngày tiếp nhận\n000.00.06.H56-241029-0004;Lê Văn Tám;29/10/2024\n"
                      f"000.00.06.H56-{date.today():%y%m%d}-0001;Phạm Thị Hoa;{date.today():%d/%m/%Y}\n",
                      encoding="utf-8")
    assert run_digitize(["registry", "import", str(export)], batch["home"]).returncode == 0
    with store.transaction(conn):
        store.update_document(conn, manual["id"], dossier_code="000.00.06.H56-241029-0004",
                              link_status="linked", link_method="manual", link_confidence=1.0)
    relinked = run_digitize(["reprocess", "--all", "--relink-only", "--force", "--json"], batch["home"])
    assert relinked.returncode == 0, relinked.stderr
    ocr_again = run_digitize(["reprocess", "--source", "*/scan-1.png", "--force", "--json"], batch["home"])
    assert ocr_again.returncode == 0, ocr_again.stderr
    assert json_lines(ocr_again.stdout)[-1]["done"] == 1
    documents = _documents(batch)
    kept = documents["scan-1.png"]
    assert (kept["dossier_code"], kept["link_status"], kept["link_method"]) == \
        ("000.00.06.H56-241029-0004", "linked", "manual")
    # The others were linked again from their stored text: nothing to link to, so no link and no guess.
    assert all(d["link_status"] == "none" and d["dossier_code"] is None
               for name, d in documents.items() if name != "scan-1.png")


def test_missing_original_is_reported_and_old_output_kept(batch):
    document = _documents(batch)["scan-3.png"]
    output = Path(document["output"])
    content, inode = output.read_bytes(), output.stat().st_ino
    versions = _versions(batch)
    original = batch["inbox"] / "scan-3.png"
    hidden = original.with_name("moved-away.bin")
    original.rename(hidden)
    try:
        result = run_digitize(["reprocess", "--source", "*/scan-3.png", "--force", "--json"], batch["home"])
    finally:
        hidden.rename(original)
    assert result.returncode == 4
    lines = json_lines(result.stdout)
    assert lines[0]["status"] == "missing" and "Original not found" in lines[0]["error"]
    assert lines[-1]["missing"] == 1 and lines[-1]["done"] == 0
    assert output.read_bytes() == content and output.stat().st_ino == inode
    assert _versions(batch) == versions
    assert _documents(batch)["scan-3.png"]["status"] == "done"


def test_relink_only_links_from_the_stored_text_and_runs_no_ocr(tmp_path, home):
    """Documents processed before their dossier was known link on --relink-only, with no OCR
    program on PATH at all; the PDF is moved into the dossier's folder, not made again."""
    fields = synth.make_fields(23)
    scan = synth.write_image(tmp_path / "bien nhan.png", synth.render_receipt(fields, dpi=200)["image"], dpi=200)
    processed = run_digitize(["process", str(scan), "--json"], home)
    assert processed.returncode == 0, processed.stderr
    [result] = json_lines(processed.stdout)
    assert result["link"]["status"] == "review" and result["dossier"] is None
    before = Path(result["output"]).read_bytes()
    # The registry arrives straight in the catalogue (as a restored catalogue would), so nothing relinked yet.
    config = site_config.load_config({"DIGITIZE_HOME": str(home)})
    headers = {key: aliases[0] for key, aliases in config["registry"]["columns"].items()}
    export = synth.write_registry(tmp_path / "so.csv", [{**fields, "status": 4, "finished": None}], headers)
    conn = store.connect(home / "catalogue.sqlite")
    store.upsert_dossiers(conn, registry.read_registry(export, config)["rows"])
    no_programs = tmp_path / "empty-bin"
    no_programs.mkdir()
    relinked = run_digitize(["reprocess", "--all", "--relink-only", "--json"], home, PATH=str(no_programs))
    assert relinked.returncode == 0, relinked.stderr
    [document] = store.list_documents(conn)
    assert (document["link_status"], document["dossier_code"]) == ("linked", fields["dossier_code"])
    moved = Path(document["output"])
    assert moved.parent.name == fields["dossier_code"] and moved.read_bytes() == before
    assert not Path(result["output"]).exists()
