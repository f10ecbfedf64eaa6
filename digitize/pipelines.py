"""Named pipeline definitions (pipelines/*.toml) and their hashes.

A document records the pipeline's name and the hash of its definition, so a
later reprocess can find what an older definition made. The default pipeline
(`intake`) is the schema: another definition may leave a key out (it takes
intake's value) but a key intake does not have, or a value of another type, is
a ConfigError (exit 9) naming the file and the key.
"""
from __future__ import annotations

import hashlib
import json
import tomllib

from .config import PIPELINES_DIR, merge, check_keys
from .errors import ConfigError

REFERENCE = "intake"
RANGES = {"deskew.max_angle": (0.0, 45.0), "ocr.psm": (0, 13), "ocr.max_dpi": (70, 1200),
          "output.jpeg_quality": (10, 100)}


def available() -> list[str]:
    return sorted(path.stem for path in PIPELINES_DIR.glob("*.toml"))


def load_pipeline(name: str) -> dict:
    """The definition as a plain dict, with its `hash` added."""
    path = PIPELINES_DIR / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(
            f"Không có quy trình xử lý tên '{name}' (có: {', '.join(available())}).",
            f"No pipeline named '{name}' (available: {', '.join(available())}).",
        )
    definition = _read(path)
    if name != REFERENCE:
        reference = _read(PIPELINES_DIR / f"{REFERENCE}.toml")
        check_keys(str(path), definition, reference)
        definition = merge(reference, definition)
    _check_ranges(path, definition)
    definition["name"] = name
    definition["hash"] = definition_hash(definition)
    return definition


def definition_hash(definition: dict) -> str:
    """Hash of what changes outputs: the stages and parameters, not the prose."""
    significant = {k: v for k, v in definition.items() if k not in ("hash", "description")}
    canonical = json.dumps(significant, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _read(path) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Tệp quy trình {path} sai cú pháp: {exc}", f"The pipeline file {path} is malformed: {exc}") \
            from exc


def _check_ranges(path, definition: dict) -> None:
    for key, (low, high) in RANGES.items():
        section, name = key.split(".")
        value = definition.get(section, {}).get(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
            raise ConfigError(f"{path}: '{key}' = {value!r} phải nằm trong khoảng {low}–{high}.",
                              f"{path}: '{key}' = {value!r} must be a number from {low} to {high}.")
