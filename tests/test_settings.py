"""Settings validated once: typos and wrong values are exit 9 naming the place; missing programs exit 3;
the wheel carries its defaults and pipelines."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from digitize import config as site_config, errors, pipelines
from tools import REPO_ROOT

from .conftest import run_digitize

SAMPLE = REPO_ROOT / "samples" / "scan_20241106_0001.jpg"


def test_defaults_load_and_env_overrides_the_user_file(tmp_path):
    user = tmp_path / "config.toml"
    user.write_text("[processing]\nworkers = 3\n[watch]\npolling = true\n", encoding="utf-8")
    config = site_config.load_config({"DIGITIZE_CONFIG": str(user), "DIGITIZE_PROCESSING_WORKERS": "2"})
    assert config["processing"]["workers"] == 2 and config["watch"]["polling"] is True
    assert site_config.load_config({"DIGITIZE_CONFIG": str(user)})["processing"]["workers"] == 3
    assert site_config.load_config({})["processing"]["workers"] == 0


@pytest.mark.parametrize("text, named", [
    ("[processing]\nworkres = 2\n", "workres"),                 # a typo
    ("[procesing]\nworkers = 2\n", "procesing"),                # a misspelt section
    ("[watch]\npolling = \"yes\"\n", "watch.polling"),          # wrong type
    ("[periods]\ncutoff_day = 31\n", "periods.cutoff_day"),     # out of range
    ("[paths\nhome = 1\n", "config.toml"),                      # not TOML at all
])
def test_a_bad_user_file_is_exit_9_naming_file_and_key(tmp_path, home, text, named):
    user = tmp_path / "config.toml"
    user.write_text(text, encoding="utf-8")
    result = run_digitize(["paths"], home, DIGITIZE_CONFIG=str(user))
    assert result.returncode == errors.BAD_CONFIG
    assert named in result.stderr and str(user) in result.stderr and "Traceback" not in result.stderr


def test_a_bad_environment_variable_is_exit_9_naming_it(home):
    result = run_digitize(["paths"], home, DIGITIZE_PERIODS_CUTOFF_DAY="abc")
    assert result.returncode == errors.BAD_CONFIG and "DIGITIZE_PERIODS_CUTOFF_DAY" in result.stderr
    result = run_digitize(["paths"], home, DIGITIZE_PROCESSING_WORKERS="-1")
    assert result.returncode == errors.BAD_CONFIG and "processing.workers" in result.stderr


def test_a_typo_in_a_pipeline_is_exit_9_before_any_page(tmp_path, home, monkeypatch):
    folder = tmp_path / "pipelines"
    folder.mkdir()
    for path in pipelines.PIPELINES_DIR.glob("*.toml"):
        (folder / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "typo.toml").write_text("[clean]\ndenoize = true\n", encoding="utf-8")
    monkeypatch.setattr(pipelines, "PIPELINES_DIR", folder)
    with pytest.raises(errors.ConfigError) as caught:
        pipelines.load_pipeline("typo")
    assert caught.value.exit_code == errors.BAD_CONFIG and "clean.denoize" in caught.value.en
    assert str(folder / "typo.toml") in caught.value.en
    (folder / "slow.toml").write_text("[ocr]\npsm = 99\n", encoding="utf-8")
    with pytest.raises(errors.ConfigError, match="ocr.psm"):
        pipelines.load_pipeline("slow")
    # A definition may leave keys out: it takes the default pipeline's.
    (folder / "short.toml").write_text("[output]\njpeg_quality = 70\n", encoding="utf-8")
    short = pipelines.load_pipeline("short")
    assert short["output"]["jpeg_quality"] == 70 and short["ocr"]["lang"] == "vie"
    result = run_digitize(["process", str(SAMPLE), "--pipeline", "nope"], home)
    assert result.returncode == errors.BAD_CONFIG and "intake" in result.stderr


def _path_without(tmp_path: Path, *missing: str) -> str:
    """A PATH with every program of the usual PATH except `missing`."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        for program in Path(directory).glob("*") if Path(directory).is_dir() else ():
            target = folder / program.name
            if program.name not in missing and not target.exists():
                target.symlink_to(program)
    return str(folder)


@pytest.mark.parametrize("program", ["pdftotext", "pdftoppm", "tesseract"])
def test_a_missing_program_is_exit_3_naming_the_package(tmp_path, home, program):
    result = run_digitize(["process", str(SAMPLE)], home, PATH=_path_without(tmp_path, program))
    assert result.returncode == errors.MISSING_DEPENDENCY, result.stderr
    package = "poppler-utils" if program.startswith("pdf") else "tesseract-ocr"
    assert program in result.stderr and package in result.stderr
    assert not list((home / "archive").rglob("*.pdf"))  # stopped before any file was touched


def test_the_wheel_carries_defaults_and_pipelines_and_runs_outside_the_checkout(tmp_path):
    wheel_dir, target, elsewhere = tmp_path / "wheel", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir),
                            str(REPO_ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = wheel_dir.glob("digitize-*.whl")
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    assert (target / "digitize" / "site_config" / "default.toml").is_file()
    assert (target / "digitize" / "pipeline_files" / "intake.toml").is_file()
    assert (target / "digitize" / "site_config" / "digitize-web.service").is_file()
    for page_file in ("templates/base.html", "static/htmx.min.js", "static/htmx.LICENSE.txt", "static/app.css"):
        assert (target / "digitize" / "web" / page_file).is_file(), page_file  # the web page needs no network
    assert not (target / "tools").exists()  # measuring tools stay out of the product
    # The installed package (first on the path), not the checkout, from an unrelated folder.
    env = {**os.environ, "PYTHONPATH": str(target), "DIGITIZE_HOME": str(tmp_path / "home")}
    where = subprocess.run([sys.executable, "-c", "import digitize, digitize.config as c; "
                            "print(digitize.__file__); print(c.DEFAULT_CONFIG)"],
                           capture_output=True, text=True, cwd=elsewhere, env=env, timeout=60)
    assert where.stdout.splitlines() == [str(target / "digitize" / "__init__.py"),
                                         str(target / "digitize" / "site_config" / "default.toml")]
    processed = subprocess.run([sys.executable, "-m", "digitize.cli", "process", str(SAMPLE), "--json"],
                               capture_output=True, text=True, cwd=elsewhere, env=env, timeout=300)
    assert processed.returncode == 0, processed.stderr
    assert '"status": "done"' in processed.stdout


def test_personal_data_is_for_the_service_user_and_group_only(tmp_path):
    home = tmp_path / "home"
    result = run_digitize(["process", str(SAMPLE), "--json"], home)
    assert result.returncode == 0, result.stderr
    output = Path(json.loads(result.stdout)["output"])
    for path, mode in ((home / "catalogue.sqlite", 0o640), (output, 0o640), (output.with_suffix(".txt"), 0o640),
                       (home / "archive", 0o750), (output.parent, 0o750), (home / "quarantine", 0o750)):
        assert path.stat().st_mode & 0o777 == mode, path
    # A site whose officers read the archive share from other accounts widens it in one setting.
    shared = tmp_path / "shared"
    result = run_digitize(["process", str(SAMPLE), "--json"], shared, DIGITIZE_PATHS_UMASK="0022")
    assert Path(json.loads(result.stdout)["output"]).stat().st_mode & 0o777 == 0o644
    assert run_digitize(["paths"], shared, DIGITIZE_PATHS_UMASK="999").returncode == errors.BAD_CONFIG
