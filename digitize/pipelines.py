"""Named pipeline definitions (pipelines/*.toml) and their hashes.

A document records the pipeline's name and the hash of its definition, so a
later reprocess can find what an older definition made.
"""
from __future__ import annotations

import hashlib
import json
import tomllib

from .config import PIPELINES_DIR
from .errors import ConfigError


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
    with path.open("rb") as handle:
        definition = tomllib.load(handle)
    definition["name"] = name
    definition["hash"] = definition_hash(definition)
    return definition


def definition_hash(definition: dict) -> str:
    """Hash of what changes outputs: the stages and parameters, not the prose."""
    significant = {k: v for k, v in definition.items() if k not in ("hash", "description")}
    canonical = json.dumps(significant, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
