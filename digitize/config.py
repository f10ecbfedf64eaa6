"""Site configuration: config/default.toml, then a user file, then env vars, validated once.

The project's defaults live in config/default.toml. A user file
(DIGITIZE_CONFIG, else ~/.config/digitize/config.toml) overrides them, and
environment variables DIGITIZE_<SECTION>_<KEY> override both. DIGITIZE_HOME
alone moves every state folder under one root.

The defaults are the schema: a key they do not have (a typo), a value of
another type, or a number outside RANGES is a ConfigError (exit 9) that names
the file or variable, the key and what is allowed — before anything runs.
"""
from __future__ import annotations

import copy
import os
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError


def _shipped_folder(in_wheel: str, in_checkout: str) -> Path:
    """config/ and pipelines/ sit at the top of a checkout; a wheel carries them inside the
    package (pyproject.toml maps them to digitize/site_config and digitize/pipeline_files)."""
    package = Path(__file__).resolve().parent
    installed = package / in_wheel
    return installed if installed.is_dir() else package.parent / in_checkout


DEFAULT_CONFIG = _shipped_folder("site_config", "config") / "default.toml"
PIPELINES_DIR = _shipped_folder("pipeline_files", "pipelines")
STATE_FOLDERS = ("inbox", "archive", "quarantine", "work")
# Inclusive bounds of the numeric settings (section.key).
RANGES = {
    "processing.workers": (0, 256), "processing.page_timeout": (1, 86_400),
    "processing.max_pixels": (1_000_000, 2_000_000_000), "processing.min_dpi": (50, 2400),
    "processing.max_pages": (1, 100_000), "processing.min_side": (1, 10_000),
    "processing.max_page_points": (72, 7200), "processing.max_aspect": (1, 1000),
    "processing.max_dpi": (50, 2400), "watch.poll_interval": (0.1, 3600), "watch.rescan_interval": (0.5, 86_400),
    "watch.stable_seconds": (0, 3600), "watch.broken_after": (0, 86_400), "watch.file_timeout": (1, 86_400),
    "periods.cutoff_day": (1, 28), "periods.pass_mark": (0, 100),
    "registry.max_rows": (1, 10_000_000), "registry.max_megabytes": (1, 4096),
    "web.session_hours": (0.25, 720), "web.login_attempts": (1, 100), "web.lockout_minutes": (1, 1440),
}


# Tables whose entries the site names (one per officer: the inbox subfolder); each entry is
# checked against this schema instead of the defaults.
NAMED_TABLES = {"signing.officers": dict.fromkeys(("kind", "pkcs12", "pkcs11_module", "token_label", "key_label",
                                                   "cert_label", "password_env", "password_file"), "")}


def _kind(value: Any) -> str:
    return {bool: "true/false", int: "a whole number", float: "a number", str: "text", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def check_value(where: str, key: str, value: Any, default: Any) -> Any:
    """`value` for `key`, if it has the default's type and is in range (an int stands for a float)."""
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not type(default) or (isinstance(default, list)
                                            and not all(isinstance(item, str) for item in value)):
        raise ConfigError(f"{where}: '{key}' phải là {_kind(default)}, không phải {value!r}.",
                          f"{where}: '{key}' must be {_kind(default)}, not {value!r}.",
                          "Sửa cấu hình rồi chạy lại.", "Fix the setting and run again.")
    low, high = RANGES.get(key, (None, None))
    if low is not None and not low <= value <= high:
        raise ConfigError(f"{where}: '{key}' = {value} nằm ngoài khoảng {low}–{high}.",
                          f"{where}: '{key}' = {value} is outside {low}–{high}.",
                          "Sửa cấu hình rồi chạy lại.", "Fix the setting and run again.")
    return value


def check_keys(where: str, values: dict, schema: dict, prefix: str = "") -> None:
    """Every key of `values` is one `schema` has, with a value of the same type (recursively)."""
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key not in schema:
            raise ConfigError(
                f"{where}: không có mục '{name}' (có: {', '.join(sorted(schema))}).",
                f"{where}: unknown setting '{name}' (allowed: {', '.join(sorted(schema))}).",
                "Sửa lỗi chính tả trong cấu hình rồi chạy lại.", "Fix the spelling in the configuration and run again.")
        if isinstance(schema[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{name}' phải là một bảng [{name}].",
                                  f"{where}: '{name}' must be a table [{name}].")
            if name in NAMED_TABLES:
                entries = {entry: NAMED_TABLES[name] for entry in value}
                check_keys(where, value, entries, f"{name}.")
            else:
                check_keys(where, value, schema[key], f"{name}.")
        else:
            values[key] = check_value(where, name, value, schema[key])


def merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _parse_env_value(name: str, raw: str, current: Any) -> Any:
    try:
        if isinstance(current, bool):
            if raw.strip().lower() not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
                raise ValueError(raw)
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if isinstance(current, int):
            return int(raw)
        if isinstance(current, float):
            return float(raw)
    except ValueError:
        raise ConfigError(f"Biến môi trường {name}={raw!r} phải là {_kind(current)}.",
                          f"The environment variable {name}={raw!r} must be {_kind(current)}.",
                          "Sửa biến môi trường rồi chạy lại.", "Fix the environment variable and run again.") from None
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
                values[key] = check_value(name, f"{section}.{key}", _parse_env_value(name, environ[name], current),
                                          current)
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
        try:
            with user_file.open("rb") as handle:
                overrides = tomllib.load(handle)
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Không đọc được tệp cấu hình {user_file}: {exc}",
                              f"Cannot read the configuration file {user_file}: {exc}") from exc
        check_keys(str(user_file), overrides, config)
        config = merge(config, overrides)
    config = _apply_env(config, environ)
    if not re.fullmatch(r"0?[0-7]{3}", config["paths"]["umask"]):
        raise ConfigError(f"paths.umask = {config['paths']['umask']!r} phải là số bát phân như \"0027\".",
                          f"paths.umask = {config['paths']['umask']!r} must be octal like \"0027\".")
    processing = config["processing"]
    if processing["min_dpi"] > processing["max_dpi"]:
        raise ConfigError("processing.min_dpi lớn hơn max_dpi.", "processing.min_dpi is larger than max_dpi.")
    return config


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


def url_from_environment(variable: str, schemes: tuple[str, ...], example: str) -> str | None:
    """The server URL in `variable` (None when unset); exit 9 when it is not of `schemes`."""
    url = os.environ.get(variable, "").strip()
    if not url:
        return None
    if urlsplit(url).scheme not in schemes:
        raise ConfigError(f"{variable} phải có dạng {example}.", f"{variable} must look like {example}.",
                          f"Sửa hoặc bỏ biến {variable}.", f"Fix or unset {variable}.")
    return url
