"""README promises kept on real scans through real tesseract: image types read from their bytes,
the A5 resolution estimate, one PDF per dossier of a feed, fields in XMP and masked in --json,
the watcher's filing paths, claims across file systems, a full disk, time limits, interrupts,
--workers, and reprocess selectors and resuming after SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pikepdf
import psutil
import pytest
from PIL import Image

from digitize import config as site_config, errors, layout, store
from digitize.assemble import XMP_NAMESPACE
from digitize.privacy import mask_cccd
from tools import synth
from tools.soak import done_shas, files_below, repeats

from .conftest import DIGITIZE, corpus_paragraphs, json_lines, run_digitize, word_recall


def scan_file(path: Path, page: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return synth.write_image(path, page["image"], dpi=200)


def small_page(seed: int, dpi: int = 200, paper: str = "A5") -> dict:
    return synth.render_prose(corpus_paragraphs("van-thu.txt", 2 * seed, 2), dpi=dpi, paper=paper, header=False)


def import_registry(tmp_path: Path, home: Path, *dossiers: dict) -> None:
    config = site_config.load_config({"DIGITIZE_HOME": str(home)})
    headers = {key: aliases[0] for key, aliases in config["registry"]["columns"].items()}
    export = synth.write_registry(tmp_path / f"so-{len(dossiers)}.csv",
                                  [{**fields, "status": 4, "finished": None} for fields in dossiers], headers)
    imported = run_digitize(["registry", "import", str(export)], home)
    assert imported.returncode == 0, imported.stderr


def quarter_folder(archive: Path, fields: dict) -> Path:
    return layout.quarter_folder(archive, fields["dossier_code"], fields["received"].date())


@pytest.fixture
def small_disk(tmp_path):
    """A 6 MB tmpfs mounted for the test (the suite runs as root, as CI does)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, f"cannot mount a tmpfs (root needed): {mounted.stderr}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> None:
    """Leave no free byte on `disk`."""
    with open(disk / "filler", "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    try:
        with open(disk / "filler", "ab") as handle:
            while True:
                handle.write(b"\0")
                handle.flush()
    except OSError:
        pass


def test_bmp_gif_webp_type_from_bytes_and_the_a5_estimate(tmp_path, home):
    inbox, out = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    pages = {name: small_page(seed) for seed, name in enumerate(["trang.bmp", "trang.gif", "trang.webp",
                                                                 "png that says jpg.jpg", "ten khong duoi"])}
    for name, page in pages.items():
        image = page["image"].convert("L")
        fmt = {"trang.bmp": "BMP", "trang.gif": "GIF", "trang.webp": "WEBP"}.get(name, "PNG")
        image.save(inbox / name, fmt, **({"lossless": True} if fmt == "WEBP" else {"dpi": (200, 200)}))
    # 200 dpi A5 without metadata: as A4 it would be 141 dpi, under the 150 dpi floor, so it is A5.
    a5 = small_page(9, dpi=200)
    synth.write_image(inbox / "a5 khong dpi.jpg", a5["image"], dpi=None)
    sources = sorted(inbox.iterdir())
    result = run_digitize(["process", *map(str, sources), "--out", str(out), "--json"], home)
    assert result.returncode == 0, result.stderr
    by_name = {Path(line["source"]).name: line for line in json_lines(result.stdout)}
    assert set(by_name) == {p.name for p in sources}
    for name, page in pages.items():
        assert by_name[name]["status"] == "done", (name, by_name[name]["error"])
        assert word_recall(page["words"], Path(by_name[name]["text_path"]).read_text(encoding="utf-8")) > 0.9, name
    with pikepdf.open(by_name["a5 khong dpi.jpg"]["output"]) as pdf:
        page = pdf.pages[0]
        width, height = float(page.mediabox[2]), float(page.mediabox[3])
        image = next(iter(page.get_images().values()))
        # A5 is 148 x 210 mm = 420 x 595 pt; the scan was made at 200 dpi.
        assert abs(width - 420) < 10 and abs(height - 595) < 10
        assert abs(int(image.Width) / width * 72 - 200) < 5


def test_a_feed_of_two_dossiers_gives_one_linked_pdf_each_with_fields_in_xmp_and_masked_json(tmp_path, home):
    first, second = synth.make_fields(31), synth.make_fields(32)
    import_registry(tmp_path, home, first, second)
    receipts = [synth.render_receipt(fields, dpi=200)["image"] for fields in (first, second)]
    declaration = small_page(3)["image"]
    feed = synth.write_pages(tmp_path / "mot lan quet.tif", [receipts[0], declaration, receipts[1]], dpi=200)
    result = run_digitize(["process", str(feed), "--json"], home)
    assert result.returncode == 0, result.stderr
    [line] = json_lines(result.stdout)
    archive = home / "archive"
    assert [(p["first_page"], p["last_page"], p["dossier"]) for p in line["parts"]] == [
        (1, 2, first["dossier_code"]), (3, 3, second["dossier_code"])]
    assert [Path(p["output"]) for p in line["parts"]] == [
        quarter_folder(archive, first) / "mot lan quet.pdf", quarter_folder(archive, second) / "mot lan quet-part2.pdf"]
    for part, fields, pages in zip(line["parts"], (first, second), (2, 1)):
        with pikepdf.open(part["output"]) as pdf, pdf.open_metadata() as xmp:
            assert len(pdf.pages) == pages
            assert xmp[f"{{{XMP_NAMESPACE}}}dossierCode"] == fields["dossier_code"]
            assert xmp[f"{{{XMP_NAMESPACE}}}ownerId"] == fields["cccd"]           # the metadata keeps it whole
            assert xmp[f"{{{XMP_NAMESPACE}}}applicant"] == fields["applicant"]
        assert Path(part["text_path"]).exists()
    # Printed output shows the CCCD masked; the catalogue keeps it.
    assert line["fields"]["cccd"] == mask_cccd(first["cccd"]) != first["cccd"]
    assert first["cccd"] not in result.stdout and second["cccd"] not in result.stdout
    documents = store.list_documents(store.connect(home / "catalogue.sqlite"))
    assert any(first["cccd"] in json.dumps(d.get("fields") or {}, ensure_ascii=False) for d in documents)


def test_the_watcher_files_each_kind_where_the_readme_says(tmp_path):
    home = tmp_path / "home"
    inbox, archive = home / "inbox", home / "archive"
    fields = synth.make_fields(41)
    import_registry(tmp_path, home, fields)
    officer, scanner = "Nguyễn Văn An", "may-quet-2"
    scan_file(inbox / officer / "bien nhan.png", synth.render_receipt(fields, dpi=200))
    prose = scan_file(inbox / scanner / "trang.png", small_page(4))
    prose_bytes = prose.read_bytes()
    (inbox / scanner / "hong.pdf").write_bytes(b"%PDF-1.4\n1 0 obj garbage\n")
    env = {"DIGITIZE_WATCH_STABLE_SECONDS": "0.2", "DIGITIZE_WATCH_BROKEN_AFTER": "0"}
    done = run_digitize(["watch", "--once"], home, **env)
    assert done.returncode == 0, done.stderr
    now = datetime.now()
    month = archive / f"{now:%Y}" / f"{now:%m}"
    dossier = quarter_folder(archive, fields)
    assert dossier.parent.name.startswith("Q") and dossier.parent.parent.name == f"{fields['received']:%Y}"
    assert (dossier / "bien nhan.pdf").is_file() and (dossier / "bien nhan.txt").is_file()
    assert (archive / "originals" / f"{now:%Y}" / f"{now:%m}" / officer / "bien nhan.png").is_file()
    assert (month / "trang.pdf").is_file() and (month / "trang.txt").is_file()
    assert (archive / "originals" / f"{now:%Y}" / f"{now:%m}" / scanner / "trang.png").read_bytes() == prose_bytes
    assert (home / "quarantine" / scanner / "hong.pdf").is_file()
    assert "Error:" in (home / "quarantine" / scanner / "hong.pdf.error.txt").read_text(encoding="utf-8")
    # Second round: a byte-identical repeat, and a PDF that already has text.
    (inbox / officer / "lai.png").write_bytes(prose_bytes)
    searchable = (month / "trang.pdf").read_bytes()
    (inbox / scanner / "co chu.pdf").write_bytes(searchable)
    again = run_digitize(["watch", "--once"], home, **env)
    assert again.returncode == 0, again.stderr
    assert (archive / "duplicates" / officer / "lai.png").read_bytes() == prose_bytes
    assert (month / "co chu.pdf").read_bytes() == searchable and (month / "co chu.txt").is_file()
    assert not files_below(inbox) and repeats(home) == 1


def test_a_claim_across_file_systems_and_the_crash_between_its_last_steps(tmp_path, small_disk):
    home = tmp_path / "home"
    inbox = small_disk / "inbox"
    env = {"DIGITIZE_PATHS_INBOX": str(inbox), "DIGITIZE_WATCH_STABLE_SECONDS": "0.2"}
    taken = scan_file(inbox / "An" / "x.png", small_page(5)).read_bytes()
    both = scan_file(inbox / "An" / "y.png", small_page(6)).read_bytes()
    # The crash window: y was copied into work/claimed/ and renamed there, but not yet deleted from the inbox.
    claimed = home / "work" / "claimed" / f"{1:016x}-1-0" / "An" / "y.png"
    claimed.parent.mkdir(parents=True)
    claimed.write_bytes(both)
    result = run_digitize(["watch", "--once"], home, **env)
    assert result.returncode == 0, result.stderr
    assert not files_below(inbox) and not files_below(home / "work" / "claimed", hidden=True)
    import hashlib
    assert sorted(done_shas(home)) == sorted(hashlib.sha256(d).hexdigest() for d in (taken, both))
    originals = files_below(home / "archive" / "originals")
    assert sorted(p.read_bytes() for p in originals) == sorted([taken, both])
    assert (home / "archive" / "duplicates" / "An" / "y.png").read_bytes() == both and repeats(home) == 1


def test_a_full_disk_is_exit_5_and_keeps_the_previous_output(tmp_path, home, small_disk):
    scan = synth.write_image(tmp_path / "trang.png", small_page(7)["image"], dpi=200)
    fill(small_disk)
    full = run_digitize(["process", str(scan), "--out", str(small_disk / "out"), "--json"], home)
    assert full.returncode == errors.OUTPUT_FILE, full.stderr
    assert json_lines(full.stdout)[0]["status"] == "failed"
    assert [p.name for p in small_disk.rglob("*") if p.is_file()] == ["filler"]     # no half-written file
    # Reprocessing into a full archive stops cleanly and leaves the good version in place.
    (small_disk / "filler").unlink()
    env = {"DIGITIZE_PATHS_ARCHIVE": str(small_disk / "archive")}
    first = run_digitize(["process", str(scan), "--json"], home, **env)
    assert first.returncode == 0, first.stderr
    output = Path(json_lines(first.stdout)[0]["output"])
    kept = output.read_bytes()
    fill(small_disk)
    again = run_digitize(["reprocess", "--all", "--force", "--json"], home, **env)
    assert again.returncode == errors.OUTPUT_FILE, again.stderr
    assert output.read_bytes() == kept
    assert store.list_documents(store.connect(home / "catalogue.sqlite"))[0]["status"] == "done"


def test_an_engine_past_its_time_limit_is_exit_7(tmp_path, home):
    dense = [synth.render_prose(corpus_paragraphs("ho-tich.txt", 20 * n, 20), dpi=300)["image"] for n in range(2)]
    tall = Image.new("RGB", (dense[0].width, dense[0].height * 2), "white")
    tall.paste(dense[0], (0, 0))
    tall.paste(dense[1], (0, dense[0].height))
    scan = synth.write_image(tmp_path / "dai.png", tall, dpi=300)
    result = run_digitize(["process", str(scan), "--json"], home, DIGITIZE_PROCESSING_PAGE_TIMEOUT="1")
    assert result.returncode == errors.ENGINE_FAILED, result.stdout + result.stderr
    assert json_lines(result.stdout)[0]["status"] == "failed"


def test_ctrl_c_is_exit_130(tmp_path, home):
    scan = synth.write_pages(tmp_path / "nhieu trang.tif", [small_page(n)["image"] for n in range(40)], dpi=200)
    process = subprocess.Popen([*DIGITIZE, "process", str(scan), "--workers", "1"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               env={**os.environ, "DIGITIZE_HOME": str(home)})
    # Interrupted while its pages are being read: once the document's work folder exists.
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline and \
            not any((home / "work").glob("*/page-*")):
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == errors.INTERRUPTED and "Interrupted" in stderr


def peak_workers(command: list[str], env: dict) -> tuple[int, int]:
    """(exit code, most page workers seen at once) while `command` runs. Each page is read by
    tesseract inside a worker process (forked from the pool's fork server)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    peak = 0
    while process.poll() is None:
        try:
            tree = psutil.Process(process.pid).children(recursive=True)
            forked = sum(1 for child in tree if "forkserver" in " ".join(child.cmdline()))
            peak = max(peak, forked - 1)  # less the fork server itself
        except psutil.Error:
            pass
        time.sleep(0.02)
    return process.returncode, peak


def test_workers_bound_the_pages_in_flight(tmp_path, home):
    scans = [synth.write_image(tmp_path / f"p{n}.png", small_page(n)["image"], dpi=200) for n in range(4)]
    env = {**os.environ, "DIGITIZE_HOME": str(home)}
    one = peak_workers([*DIGITIZE, "process", *map(str, scans), "--out", str(tmp_path / "a"), "--workers", "1"],
                       env)
    two = peak_workers([*DIGITIZE, "process", *map(str, scans), "--out", str(tmp_path / "b"), "--workers", "2"],
                       env)
    assert one == (0, 1) and two == (0, 2)


@pytest.fixture(scope="module")
def catalogued(tmp_path_factory):
    """A receipt linked to its dossier and three prose scans that link to nothing, processed once."""
    folder = tmp_path_factory.mktemp("promises")
    home = folder / "home"
    fields = synth.make_fields(51)
    import_registry(folder, home, fields)
    receipt = synth.write_image(folder / "bien nhan.png", synth.render_receipt(fields, dpi=200)["image"], dpi=200)
    prose = [synth.write_image(folder / f"trang {n}.png", small_page(10 + n)["image"], dpi=200) for n in range(3)]
    result = run_digitize(["process", str(receipt), *map(str, prose), "--json"], home)
    assert result.returncode == 0, result.stderr
    return {"home": home, "fields": fields}


def planned(home: Path, *selectors: str) -> list[str]:
    result = run_digitize(["reprocess", *selectors, "--dry-run", "--json"], home)
    assert result.returncode == 0, result.stderr
    [plan] = json_lines(result.stdout)
    return sorted(Path(d["source"]).name for d in plan["documents"]) if plan["event"] == "plan" else []


def test_reprocess_selectors_pick_what_they_name(catalogued):
    home, fields = catalogued["home"], catalogued["fields"]
    today = datetime.now()
    everything = ["bien nhan.png", "trang 0.png", "trang 1.png", "trang 2.png"]
    assert planned(home, "--dossier", fields["dossier_code"]) == ["bien nhan.png"]
    # --quarter and --from/--to go by when a document was catalogued.
    assert planned(home, "--quarter", f"{today:%Y}-Q{(today.month - 1) // 3 + 1}") == everything
    assert planned(home, "--from", f"{today:%Y-%m-%d}", "--to", f"{today:%d/%m/%Y}") == everything
    assert planned(home, "--status", "unlinked") == ["trang 0.png", "trang 1.png", "trang 2.png"]
    assert planned(home, "--status", "unlinked", "--source", "*/trang 1.png") == ["trang 1.png"]


def test_reprocess_stopped_by_sigterm_continues_where_it_stopped(catalogued):
    home = catalogued["home"]
    command = [*DIGITIZE, "reprocess", "--status", "unlinked", "--workers", "1", "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True,
                               env={**os.environ, "DIGITIZE_HOME": str(home)})
    first = json.loads(process.stdout.readline())
    process.send_signal(signal.SIGTERM)
    rest = process.stdout.read()
    assert process.wait(timeout=60) == errors.INTERRUPTED
    process.stdout.close()
    assert first["event"] == "document" and first["status"] == "done"
    stopped_after = [json.loads(line) for line in rest.splitlines() if line.startswith("{")]
    done_first = {Path(first["source"]).name} | {Path(line["source"]).name for line in stopped_after
                                                 if line.get("event") == "document" and line["status"] == "done"}
    assert len(done_first) < 3
    resumed = run_digitize([*command[3:]], home)
    assert resumed.returncode == 0, resumed.stderr
    redone = {Path(line["source"]).name for line in json_lines(resumed.stdout) if line["event"] == "document"}
    assert redone == {"trang 0.png", "trang 1.png", "trang 2.png"} - done_first
