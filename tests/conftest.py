"""Shared fixtures: real rendered pages, the shared Vietnamese corpus, a digitize home."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from digitize import synth
from digitize.config import PROJECT_ROOT

CORPUS = PROJECT_ROOT.parent / "shared" / "corpus" / "vi"
DIGITIZE = [sys.executable, "-m", "digitize.cli"]


def corpus_paragraphs(name: str = "ho-tich.txt", start: int = 0, count: int = 12) -> list[str]:
    """Real legal prose from ../shared/corpus/vi; the project's own text where it is absent."""
    path = CORPUS / name
    if not path.is_file():
        return list(synth.SAMPLE_PARAGRAPHS)
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines[start:start + count]


def word_recall(truth_words: list[str], text: str) -> float:
    truth = Counter(synth.nfc(w) for w in truth_words)
    found = Counter(synth.nfc(text).split())
    return sum((truth & found).values()) / max(1, sum(truth.values()))


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
