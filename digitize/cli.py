"""The `digitize` command: parses, calls, prints. Exit codes: see errors.py and the README."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__, config as site_config, engine, errors, store
from .pipelines import load_pipeline

SCAN_SUFFIXES = {".pdf", ".tif", ".tiff", ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}


def _emit(args: argparse.Namespace, payload: dict, line: str) -> None:
    print(json.dumps(payload, ensure_ascii=False) if getattr(args, "json", False) else line, flush=True)


def expand_inputs(paths: list[str]) -> list[Path]:
    """Files as given; folders walked for scans, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*")
                                if p.is_file() and p.suffix.lower() in SCAN_SUFFIXES
                                and not p.name.startswith(".")))
        else:
            found.append(path)
    return found


def cmd_paths(args: argparse.Namespace, config: dict) -> int:
    paths = site_config.resolve_paths(config)
    if args.json:
        print(json.dumps({key: str(value) for key, value in paths.items()}, ensure_ascii=False))
    else:
        for key, value in paths.items():
            print(f"{key:11} {value}")
    return errors.OK


def cmd_process(args: argparse.Namespace, config: dict) -> int:
    pipeline = load_pipeline(args.pipeline or config["processing"]["pipeline"])
    paths = site_config.resolve_paths(config)
    site_config.ensure_folders(paths)
    out_dir = Path(args.out) if args.out else paths["archive"]
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = expand_inputs(args.paths)
    if not inputs:
        print("Không có tệp nào để xử lý. / No files to process.", file=sys.stderr)
        return errors.BAD_ARGS
    workers = args.workers or site_config.worker_count(config)
    conn = store.connect(paths["catalogue"])
    exit_code = errors.OK
    for result in engine.run(inputs, out_dir, pipeline, config, workers, paths["work"], force=args.force):
        if result["sha256"]:
            store.save_result(conn, result, pipeline)
        if result["status"] != "done" and exit_code == errors.OK:
            exit_code = result["exit_code"]
        shown = {k: v for k, v in result.items() if k != "pages"}
        shown["pages"] = [{k: p[k] for k in ("orientation", "skew", "confidence")} for p in result["pages"]]
        if result["status"] == "done":
            line = f"xong / done     {result['source']} → {result['output']} ({len(result['pages'])} trang/pages)"
        else:
            line = f"{result['status']:15} {result['source']}: {result['error']}"
        _emit(args, shown, line)
    return exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digitize",
        description="Số hóa hồ sơ quét: PDF tìm kiếm được, liên kết hồ sơ, báo cáo. "
                    "/ Scans to searchable PDFs, linked to dossiers, with reports.",
    )
    parser.add_argument("--version", action="version", version=f"digitize {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    paths = commands.add_parser("paths", help="where digitize keeps its files")
    paths.add_argument("--json", action="store_true")
    paths.set_defaults(handler=cmd_paths)

    process = commands.add_parser("process", help="scans in, searchable PDFs out")
    process.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    process.add_argument("--out", metavar="DIR", help="output folder (default: the archive)")
    process.add_argument("--pipeline", metavar="NAME", help="pipeline definition in pipelines/")
    process.add_argument("--workers", type=int, metavar="N", help="worker processes (default: cores)")
    process.add_argument("--json", action="store_true", help="one JSON object per document")
    process.add_argument("--force", action="store_true", help="OCR PDFs that already have text")
    process.set_defaults(handler=cmd_process)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = site_config.load_config()
        return args.handler(args, config)
    except errors.DigitizeError as exc:
        print(f"lỗi / error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Đã dừng. / Interrupted.", file=sys.stderr)
        return errors.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
