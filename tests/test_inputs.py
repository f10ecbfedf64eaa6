"""What `process` refuses before reading a page, and how it stops: issue 10, item 15.

Pipes and devices are never read, an empty path is not the current folder, and pages
outside the documented [processing] bounds (README "Limits") are bad input (exit 4),
refused by pages.inspect before any worker decodes them. SIGTERM stops `process` as
Ctrl-C does: exit 130, no work folder left behind.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from digitize import config as site_config, errors, pages
from digitize.errors import InputFileError
from tools import synth
from tools.soak import page_bytes, wait_until

from .conftest import DIGITIZE, PROJECT_ROOT, json_lines, run_digitize


def _blank_pdf(path: Path, page_count: int, size_pt: tuple[float, float] = (595, 842)) -> Path:
    with pikepdf.new() as pdf:
        for _ in range(page_count):
            pdf.add_blank_page(page_size=size_pt)
        pdf.save(path)
    return path


def _refusal(line: dict) -> str:
    assert line["status"] == "failed" and line["exit_code"] == errors.INPUT_FILE, line
    vi, _, en = line["error"].partition(" / ")
    assert vi and en and "\n" not in line["error"]
    return en


def test_pipes_and_devices_are_refused_without_being_read(tmp_path, home):
    fifo = tmp_path / "scan.pdf"
    os.mkfifo(fifo)  # nobody ever writes: reading it would block forever
    for source in (fifo, Path("/dev/zero")):  # /dev/zero never ends
        result = run_digitize(["process", str(source), "--json"], home, timeout=60)
        assert result.returncode == errors.INPUT_FILE, result.stderr
        assert "Not a regular file" in _refusal(json_lines(result.stdout)[0])
    assert not list((home / "work").iterdir())


def test_an_empty_path_is_refused_not_the_current_folder(tmp_path, home):
    scans = tmp_path / "here"
    scans.mkdir()
    (scans / "scan.jpg").write_bytes(page_bytes(1))
    result = subprocess.run([*DIGITIZE, "process", ""], capture_output=True, text=True, timeout=60, cwd=scans,
                            env={**os.environ, "DIGITIZE_HOME": str(home), "PYTHONPATH": str(PROJECT_ROOT)})
    assert result.returncode == errors.BAD_ARGS
    assert "empty path" in result.stderr and "Traceback" not in result.stderr
    assert list(home.iterdir()) == []  # refused before anything was made


def test_pages_outside_the_bounds_are_bad_input(tmp_path, home):
    Image.new("L", (1, 1), 255).save(tmp_path / "dot.png")
    Image.new("1", (200_000, 150), 1).save(tmp_path / "ribbon.png")
    _blank_pdf(tmp_path / "poster.pdf", 1, (14_400, 14_400))
    Image.new("1", (14_000, 14_000), 1).save(tmp_path / "196 megapixels.png")
    names = ["dot.png", "ribbon.png", "poster.pdf", "196 megapixels.png"]
    result = run_digitize(["process", *(str(tmp_path / n) for n in names), "--out", str(tmp_path / "out"),
                           "--json"], home, timeout=120)
    assert result.returncode == errors.INPUT_FILE, result.stderr
    reasons = {Path(line["source"]).name: _refusal(line) for line in json_lines(result.stdout)}
    assert "too small (1×1 pixels" in reasons["dot.png"]
    assert "too long and narrow (200000×150" in reasons["ribbon.png"]
    assert "too large (14,400 pt" in reasons["poster.pdf"]
    assert "image too large (14000×14000 pixels, limit 50,000,000)" in reasons["196 megapixels.png"]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("size, dpi, setting, default, allowing", [
    ((99, 1500), 150, "min_side", 100, 50), ((2001, 100), 150, "max_aspect", 20.0, 30.0),
    ((7520, 3000), 150, "max_page_points", 3600.0, 4000.0), ((5001, 10_000), 600, "max_pixels", 50_000_000, 60_000_000)])
def test_each_bound_is_a_setting(tmp_path, size, dpi, setting, default, allowing):
    """Just past each default bound is refused; the same page passes once the setting allows it."""
    config = site_config.load_config({"DIGITIZE_HOME": str(tmp_path)})
    assert config["processing"][setting] == default
    image = tmp_path / "page.png"
    Image.new("1", size, 1).save(image, dpi=(dpi, dpi))
    with pytest.raises(InputFileError):
        pages.inspect(image, config)
    allowed = {**config, "processing": {**config["processing"], setting: allowing}}
    assert pages.inspect(image, allowed).page_count == 1


def test_page_count_limit(tmp_path, home):
    started = time.monotonic()
    result = run_digitize(["process", str(_blank_pdf(tmp_path / "5000 pages.pdf", 5000)), "--json"], home,
                          timeout=120)
    assert result.returncode == errors.INPUT_FILE
    assert "Too many pages (more than the limit of 1,000)" in _refusal(json_lines(result.stdout)[0])
    assert time.monotonic() - started < 60  # refused from the page count, not after rendering pages
    tiff = tmp_path / "three.tif"
    synth.write_pages(tiff, [Image.new("L", (800, 1100), 255)] * 3, dpi=100)
    result = run_digitize(["process", str(tiff), "--json"], home, DIGITIZE_PROCESSING_MAX_PAGES="2")
    assert "more than the limit of 2" in _refusal(json_lines(result.stdout)[0])
    for bad in ("0", "many"):
        result = run_digitize(["process", str(tiff)], home, DIGITIZE_PROCESSING_MAX_PAGES=bad)
        assert result.returncode == errors.BAD_CONFIG and "DIGITIZE_PROCESSING_MAX_PAGES" in result.stderr


def test_sigterm_stops_like_ctrl_c_and_leaves_no_work_folders(tmp_path, home):
    pages_ = [synth.scan(synth.render_prose(dpi=200), angle=2.0, seed=n)["image"] for n in range(8)]
    synth.write_pages(tmp_path / "tap ho so.tif", pages_, dpi=200)
    out = tmp_path / "out"
    process = subprocess.Popen([*DIGITIZE, "process", str(tmp_path / "tap ho so.tif"), "--out", str(out),
                                "--workers", "2"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "DIGITIZE_HOME": str(home)})
    work = home / "work"
    # Signalled once the first page is back and others are in flight.
    assert wait_until(lambda: any(work.glob("*/page-*.jpg")), 120)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == errors.INTERRUPTED, stderr
    assert "Interrupted" in stderr and "Traceback" not in stderr
    assert list(work.iterdir()) == []
    assert not out.exists() or list(out.iterdir()) == []
