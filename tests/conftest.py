"""Shared fixtures: real rendered pages, the shared Vietnamese corpus, a digitize home."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools import synth
from tools.evaluate import word_recall_counts
from tools import REPO_ROOT as PROJECT_ROOT

DIGITIZE = [sys.executable, "-m", "digitize.cli"]


def corpus_paragraphs(name: str = "ho-tich.txt", start: int = 0, count: int = 12) -> list[str]:
    """Real legal prose from ../shared/corpus/vi; the project's own text where it is absent."""
    return synth.corpus_lines(name)[start:start + count] or list(synth.SAMPLE_PARAGRAPHS)


def word_recall(truth_words: list[str], text: str) -> float:
    found, total = word_recall_counts(truth_words, text)
    return found / max(1, total)


@pytest.fixture(scope="session")
def prose_page() -> dict:
    return synth.render_prose(corpus_paragraphs(), dpi=300)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def run_digitize(args: list[str], home: Path, timeout: float = 600, **env) -> subprocess.CompletedProcess:
    """The real `digitize` command in a subprocess, state under `home`."""
    environment = {**os.environ, "DIGITIZE_HOME": str(home), **env}
    return subprocess.run([*DIGITIZE, *args], capture_output=True, text=True, timeout=timeout,
                          env=environment, cwd=PROJECT_ROOT)


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]
