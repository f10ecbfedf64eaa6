"""Site configuration: config/default.toml, then a user file, then env vars.

The project's defaults live in config/default.toml. A user file
(DIGITIZE_CONFIG, else ~/.config/digitize/config.toml) overrides them, and
environment variables DIGITIZE_<SECTION>_<KEY> override both. DIGITIZE_HOME
alone moves every state folder under one root.
"""
from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any


def _shipped_folder(in_wheel: str, in_checkout: str) -> Path:
    """config/ and pipelines/ sit at the top of a checkout; a wheel carries them inside the
    package (pyproject.toml maps them to digitize/site_config and digitize/pipeline_files)."""
    package = Path(__file__).resolve().parent
    installed = package / in_wheel
    return installed if installed.is_dir() else package.parent / in_checkout


DEFAULT_CONFIG = _shipped_folder("site_config", "config") / "default.toml"
PIPELINES_DIR = _shipped_folder("pipeline_files", "pipelines")
STATE_FOLDERS = ("inbox", "archive", "quarantine", "work")


def _merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _parse_env_value(raw: str, current: Any) -> Any:
    if isinstance(current, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    if isinstance(current, list):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _apply_env(config: dict, environ: dict[str, str]) -> dict:
    config = copy.deepcopy(config)
    for section, values in config.items():
        if not isinstance(values, dict):
            continue
        for key, current in values.items():
            name = f"DIGITIZE_{section}_{key}".upper().replace(".", "_").replace("-", "_")
            if name in environ and not isinstance(current, dict):
                values[key] = _parse_env_value(environ[name], current)
    if environ.get("DIGITIZE_HOME"):
        config["paths"]["home"] = environ["DIGITIZE_HOME"]
    return config


def user_config_path(environ: dict[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get("DIGITIZE_CONFIG"):
        return Path(environ["DIGITIZE_CONFIG"]).expanduser()
    return Path("~/.config/digitize/config.toml").expanduser()


def load_config(environ: dict[str, str] | None = None) -> dict:
    """The merged configuration as a plain dict."""
    environ = dict(os.environ if environ is None else environ)
    with DEFAULT_CONFIG.open("rb") as handle:
        config = tomllib.load(handle)
    user_file = user_config_path(environ)
    if user_file.is_file():
        with user_file.open("rb") as handle:
            config = _merge(config, tomllib.load(handle))
    return _apply_env(config, environ)


def resolve_paths(config: dict) -> dict[str, Path]:
    """Absolute locations of home, inbox, archive, quarantine, work, catalogue."""
    paths = config["paths"]
    home = Path(paths["home"]).expanduser().resolve()
    resolved = {"home": home}
    for key in (*STATE_FOLDERS, "catalogue"):
        location = Path(paths[key]).expanduser()
        resolved[key] = location if location.is_absolute() else home / location
    return resolved


def ensure_folders(paths: dict[str, Path]) -> None:
    for key in ("home", *STATE_FOLDERS):
        paths[key].mkdir(parents=True, exist_ok=True)
    paths["catalogue"].parent.mkdir(parents=True, exist_ok=True)


def worker_count(config: dict) -> int:
    configured = int(config["processing"].get("workers", 0))
    return configured if configured > 0 else (os.cpu_count() or 1)
