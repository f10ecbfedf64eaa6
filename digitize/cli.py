"""The `digitize` command: parses, calls, prints. Exit codes: see errors.py and the README."""
from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sqlite3
import sys
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from . import __version__, accounts, assemble, config as site_config, coversheet, decisions, errors, jobs
from . import periods as period_rules, programs, reports, reprocess, status, store
from .files import apply_umask, write_bytes_atomic
from .models import DONE, DocumentResult
from .vntext import path_text
from .privacy import mask_cccd, masked_data, shown
from .pipelines import load_pipeline

SCAN_SUFFIXES = {".pdf", ".tif", ".tiff", ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".heic", ".heif"}
MAX_WORKERS = site_config.RANGES["processing.workers"][1]
SQLITE_MAX_ID = 2 ** 63 - 1


def _json_line(payload) -> str:
    """One JSON line as printed: every ID-like run masked (privacy)."""
    return json.dumps(masked_data(payload), ensure_ascii=False)


def _emit(args: argparse.Namespace, payload: dict, line: str) -> None:
    """`line` must already be built from privacy.shown values."""
    print(_json_line(payload) if getattr(args, "json", False) else line, flush=True)


@contextmanager
def _writing(target: Path):
    """An output the OS refuses (read-only, a file in the way, a folder where a file goes) is exit 5."""
    try:
        yield
    except OSError as error:
        vi = en = error.strerror or str(error)
        if isinstance(error, (FileExistsError, NotADirectoryError)):
            vi, en = "một tệp nằm ở chỗ cần thư mục", "a file stands where a folder is needed"
        elif isinstance(error, IsADirectoryError):
            vi, en = "đây là một thư mục, cần tên tệp", "that is a folder, a file name is needed"
        raise errors.OutputError(f"Không ghi được {shown(target)}: {vi}", f"Cannot write {shown(target)}: {en}",
                                 "Chọn --out là một nơi ghi được (tệp cho báo cáo, thư mục cho process/report).",
                                 "Point --out at a writable place (a file for reports, a folder for process/report).",
                                 ) from None


class UsageError(errors.DigitizeError):
    exit_code = errors.BAD_ARGS


def expand_inputs(paths: list[str]) -> list[Path]:
    """Files as given; folders walked for scans, in a stable order.

    An empty argument is refused: Path("") is the current folder, and walking it is never what was meant."""
    found: list[Path] = []
    for raw in paths:
        if not raw.strip():
            raise UsageError("Đường dẫn rỗng.", "An empty path was given.",
                             "Ghi rõ tệp hoặc thư mục cần xử lý.", "Name the files or folders to process.")
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


def _process_line(result: DocumentResult) -> str:
    if result.status != DONE:
        return f"{result.status:15} {shown(result.source)}: {shown(result.error)}"
    lines = [f"xong / done     {shown(result.source)} ({len(result.pages)} trang/pages)"]
    for part in result.parts:
        state = (f"hồ sơ / dossier {part.dossier}" if part.link.status == "linked"
                 else "chờ xem xét / needs review" if part.link.status == "review"
                 else "chưa liên kết / not linked")
        lines.append(f"    trang/pages {part.first_page}-{part.last_page} → {shown(part.output)} [{state}]")
        if part.signature and part.signature.status == "pending":
            lines.append(f"    chưa ký / not signed: {shown(part.signature.reason)}")
        lines.extend(f"    ! {shown(warning['message'])}" for warning in part.warnings)
    return "\n".join(lines)


def cmd_process(args: argparse.Namespace, config: dict) -> int:
    inputs = expand_inputs(args.paths)
    pipeline = load_pipeline(args.pipeline or config["processing"]["pipeline"])
    programs.versions(pipeline["ocr"]["lang"])
    paths = site_config.resolve_paths(config)
    with _writing(paths["home"]):
        site_config.ensure_folders(paths)
    # Into the archive, documents are filed by dossier and month; --out keeps them together there.
    destination = jobs.Destination(Path(args.out).absolute(), filed=False) if args.out \
        else jobs.Destination(paths["archive"])
    with _writing(destination.root):
        destination.root.mkdir(parents=True, exist_ok=True)
    if not inputs:
        print("Không có tệp nào để xử lý. / No files to process.", file=sys.stderr)
        return errors.BAD_ARGS
    if args.queue or args.wait:
        return _process_queued(args, pipeline, inputs)
    run = jobs.Run(pipeline, config, destination, args.workers or site_config.worker_count(config), paths["work"],
                   force=args.force)
    conn = store.connect(paths["catalogue"])
    exit_code = errors.OK
    intakes = [jobs.Intake(path, path_text(path.absolute()), original=path_text(path.absolute())) for path in inputs]
    # Interrupted, the results are closed at once: pages in flight finish, work folders go.
    with contextlib.closing(jobs.process(intakes, run, conn)) as results:
        for _, result in results:
            if result.status != DONE:
                jobs.record_failure(conn, result, pipeline, None, result.source)
                exit_code = exit_code or result.exit_code
            _emit(args, result.to_json(), _process_line(result))
    return exit_code


def _process_queued(args: argparse.Namespace, pipeline: dict, inputs: list[Path]) -> int:
    """--queue: one task per file to the workers (queue.py); --wait prints each result as above."""
    from . import queue
    url = queue.required_broker()
    handles = queue.enqueue(url, [queue.job_for(path, pipeline["name"], Path(args.out) if args.out else None,
                                                args.force) for path in inputs])
    if not args.wait:
        _emit(args, {"event": "queued", "documents": len(handles), "tasks": [h.id for h in handles]},
              f"Đã gửi {len(handles)} tệp vào hàng đợi / {len(handles)} files queued "
              "(xem tiến độ / progress: digitize status)")
        return errors.OK
    exit_code = errors.OK
    for payload in queue.wait(handles, [str(path.absolute()) for path in inputs]):
        if payload["status"] != DONE:
            exit_code = exit_code or payload["exit_code"]
        _emit(args, payload, _process_line(queue.result_of(payload)))
    return exit_code


def _write_report(data: bytes, out: Path) -> None:
    with _writing(out):
        write_bytes_atomic(out, data)
    print(f"Đã ghi / written: {shown(out)}", file=sys.stderr)


def cmd_coverage(args: argparse.Namespace, config: dict) -> int:
    chosen, report = reports.for_options(
        _catalogue(config), config, today=date.today(), fmt=args.format, quarter=args.quarter, month=args.month,
        year=args.year, from_day=args.from_day, to_day=args.to_day, by=args.by)
    data = reports.render(report, args.format, args.lang, args.by)
    if args.out or args.format == "xlsx":
        out = Path(args.out) if args.out else Path(reports.report_stem(chosen[-1].label, args.lang) + ".xlsx")
        _write_report(data, out)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return errors.OK


def cmd_report(args: argparse.Namespace, config: dict) -> int:
    today = date.today()
    cutoff = config["periods"]["cutoff_day"]
    period = (period_rules.parse_label(args.period, cutoff) if args.period
              else period_rules.containing(today, "quarter", cutoff))
    conn = store.connect(site_config.resolve_paths(config)["catalogue"])
    report = reports.build(conn, [period], config, today=today, by=tuple(reports.BREAKDOWN_KEYS), chart=True)
    stem = Path(args.out) / reports.report_stem(period.label, args.lang)
    _write_report(reports.to_xlsx(report, args.lang), stem.with_suffix(".xlsx"))
    _write_report(reports.to_html(report, args.lang).encode("utf-8"), stem.with_suffix(".html"))
    return errors.OK


def cmd_reprocess(args: argparse.Namespace, config: dict) -> int:
    return reprocess.reprocess(args, config)


# --- watched folder (issue 4) ---
def cmd_watch(args: argparse.Namespace, config: dict) -> int:
    from . import watch
    if args.polling:
        config = {**config, "watch": {**config["watch"], "polling": True}}
    return watch.watch(config, once=args.once)


def cmd_worker(args: argparse.Namespace, config: dict) -> int:
    from . import queue
    url = queue.required_broker()
    store.connect(site_config.resolve_paths(config)["catalogue"]).close()  # reachable, and migrated, first
    return queue.run_worker(url, args.concurrency or site_config.worker_count(config), args.name)


def cmd_status(args: argparse.Namespace, config: dict) -> int:
    report = status.status(config)
    print(_json_line(report) if args.json else status.format_status(report))
    return errors.OK


# --- registry, review and linking (issue 3) ---
def _catalogue(config: dict):
    return store.connect(site_config.resolve_paths(config)["catalogue"])


def _archive(config: dict) -> Path:
    return site_config.resolve_paths(config)["archive"]


def cmd_registry_import(args: argparse.Namespace, config: dict) -> int:
    payload = decisions.import_registry(_catalogue(config), args.file, config, _archive(config),
                                        decisions.cli_actor())
    if args.json:
        print(_json_line(payload))
        return errors.OK
    print(f"Dòng dữ liệu / data lines: {payload['lines']}  "
          f"Thêm mới / added: {payload['added']}  Cập nhật / updated: {payload['updated']}  "
          f"Không đổi / unchanged: {payload['unchanged']}  Bị loại / rejected: {len(payload['rejected'])}")
    for row in payload["rejected"]:
        print(f"  dòng / line {row['line']}: {shown(row['reason_vi'])} / {shown(row['reason_en'])}")
    for note in payload["notes"]:
        print(f"  lưu ý / note: {shown(note)}")
    for item in payload["relinked"]:
        print(f"  đã liên kết / linked: tài liệu / document {item['document']} → {item['dossier']}")
    return errors.OK


def cmd_registry_list(args: argparse.Namespace, config: dict) -> int:
    conn = _catalogue(config)
    if args.quarter:
        period = period_rules.parse_label(args.quarter, config["periods"]["cutoff_day"])
        rows = store.list_dossiers(conn, period.start.isoformat(), period.end.isoformat())
    else:
        rows = store.list_dossiers(conn)
    for row in rows:
        row["cccd"] = mask_cccd(row["cccd"])
        if args.json:
            print(_json_line(row))
        else:
            print(f"{row['code']:28} {row['received_date'] or '':10} {str(row['status'] or ''):>3}  "
                  f"{shown(row['applicant']):28} {shown(row['procedure_name'])}")
    if not args.json:
        print(f"{len(rows)} hồ sơ / dossiers", file=sys.stderr)
    return errors.OK


def cmd_review(args: argparse.Namespace, config: dict) -> int:
    documents = store.documents_in_review(_catalogue(config))
    for document in documents:
        waiting = {"id": document["id"], "source": document["source"], "output": document["output"],
                 "kind": document["kind"], "first_page": document["first_page"],
                 "candidates": document["candidates"] or [], "warnings": document["warnings"] or []}
        if args.json:
            print(_json_line(waiting))
            continue
        print(f"#{document['id']}  {shown(Path(document['source']).name)} "
              f"(trang / page {document['first_page']}, {document['kind'] or 'other'})")
        for warning in waiting["warnings"]:
            print(f"    ! {shown(warning['message'])}")
        if document["link_status"] != "review":
            continue  # here for its pages (rescan them), its link is settled
        for candidate in waiting["candidates"]:
            print(f"    {candidate['code']}  {candidate['score']:.2f}  " + shown("; ".join(candidate["evidence"])))
        if not waiting["candidates"]:
            print("    (không có ứng viên / no candidates)")
    if not args.json:
        print(f"{len(documents)} tài liệu chờ xem xét / documents waiting for review. "
              "Dùng / use: digitize link DOC DOSSIER", file=sys.stderr)
    return errors.OK


def cmd_link(args: argparse.Namespace, config: dict) -> int:
    code = decisions.link_by_hand(_catalogue(config), args.document, args.dossier, _archive(config),
                                  decisions.cli_actor())
    print(f"Đã liên kết thủ công / linked by hand: tài liệu / document {args.document} → {code}")
    return errors.OK


def cmd_unlink(args: argparse.Namespace, config: dict) -> int:
    decisions.unlink_by_hand(_catalogue(config), args.document, _archive(config), decisions.cli_actor())
    print(f"Đã bỏ liên kết / unlinked: tài liệu / document {args.document} "
          "(quyết định thủ công, không bị chạy tự động ghi đè / a manual decision, kept by automatic runs)")
    return errors.OK


def cmd_coversheet(args: argparse.Namespace, config: dict) -> int:
    wanted = [decisions.dossier_code(text) for text in args.codes]
    conn = _catalogue(config)
    known = {code: row for code in wanted if (row := store.get_dossier(conn, code))}
    with _writing(Path(args.out)):
        out = coversheet.write_cover_sheets(wanted, known, Path(args.out))
    for code in wanted:
        if code not in known:
            print(f"lưu ý / note: {code} chưa có trong sổ, phiếu chỉ có mã / not in the registry, sheet shows the code only",
                  file=sys.stderr)
    print(f"Đã ghi / written: {shown(out)} ({len(wanted)} phiếu / sheets)")
    return errors.OK


def cmd_catalogue_rebuild(args: argparse.Namespace, config: dict) -> int:
    from . import rebuild
    paths = site_config.resolve_paths(config)
    if status.service(paths["home"])["running"]:
        raise UsageError("Hãy dừng dịch vụ theo dõi (digitize watch) trước khi dựng lại danh mục.",
                         "Stop the watcher (digitize watch) before rebuilding the catalogue.")
    counts = rebuild.rebuild(paths["archive"], paths["catalogue"])
    if args.json:
        print(json.dumps(counts, ensure_ascii=False))
        return errors.OK
    print(f"Đã dựng lại danh mục từ kho lưu trữ / catalogue rebuilt from the archive: {counts['documents']} tài liệu / "
          f"documents ({counts['files']} tệp PDF / PDFs, {counts['originals']} có bản gốc / with their original)")
    if counts["set_aside"]:
        print(f"Danh mục cũ để riêng / the old catalogue is kept at: {counts['set_aside']}")
    print("Nhập lại danh sách hồ sơ / import the dossier list again: digitize registry import FILE")
    return errors.OK


# --- signing and the format rules for digitised copies (issue 13) ---
def _trust_roots(args: argparse.Namespace, config: dict) -> list:
    from . import sign
    return sign.load_trust_roots([*sign.settings_from(config).trust_roots, *(args.trust or [])])


def cmd_sign(args: argparse.Namespace, config: dict) -> int:
    from . import sign
    settings = sign.with_command_line(sign.settings_from(config), args)
    targets = [(Path(path), args.officer) for path in args.paths]
    try:
        chosen = reprocess.selection_of(args, config)
    except reprocess.SelectionError:
        if not targets:
            raise
    else:
        # Copies digitize made; a PDF filed as it came (born digital, or signed by others) is not one.
        targets += [(Path(doc["output"]), doc["officer"]) for doc in reprocess.select(_catalogue(config), chosen, None, False)
                    if doc["status"] == DONE and doc["output"] and assemble.read_metadata(Path(doc["output"]))]
    exit_code = errors.OK
    conn = _catalogue(config)
    for path, officer in targets:
        outcome = sign.sign_copy(path, settings, officer)
        store.set_signature(conn, str(path.absolute()), "pending" if outcome.status == "pending" else "signed",
                            outcome.reason)
        if outcome.status == "pending":
            exit_code = errors.SIGNING_FAILED
        line = (f"đã ký / signed   {path}  {outcome.signer}  {outcome.signed_at}  {outcome.level}"
                if outcome.status == "signed" else f"đã ký trước / already signed  {path}"
                if outcome.status == "already-signed" else f"chưa ký / not signed  {path}: {outcome.reason}")
        _emit(args, outcome.to_json(), line)
    return exit_code


def cmd_verify(args: argparse.Namespace, config: dict) -> int:
    from . import sign
    roots = _trust_roots(args, config)
    exit_code = errors.OK
    for raw in args.files:
        if not Path(raw).is_file():
            print(f"{raw}: không tìm thấy tệp / file not found", file=sys.stderr)
            exit_code = exit_code or errors.INPUT_FILE
            continue
        checks = sign.verify_pdf(Path(raw), roots)
        if not checks or not all(check.intact for check in checks):
            exit_code = exit_code or errors.SIGNATURE_INVALID
        if args.json:
            print(json.dumps({"file": raw, "signatures": [c.to_json() for c in checks]}, ensure_ascii=False))
            continue
        print(f"{raw}" + ("" if checks else ": không có chữ ký số / no signature"))
        for check in checks:
            state = "nguyên vẹn / intact" if check.intact else f"HỎNG / BROKEN: {check.problem}"
            trust = "tin cậy / trusted" if check.trusted else "không thuộc danh sách tin cậy / not in the trust list"
            print(f"  {state}; {check.signer or '?'}; {check.signed_at or '?'}"
                  + (f"; dấu thời gian / timestamp {check.timestamp}" if check.timestamp else "") + f"; {trust}")
    return exit_code


def cmd_check(args: argparse.Namespace, config: dict) -> int:
    import pikepdf
    from . import check
    roots = _trust_roots(args, config)
    exit_code = errors.OK
    for raw in args.files:
        try:
            results = check.check_pdf(Path(raw), roots)
        except (pikepdf.PdfError, OSError) as exc:
            print(f"{raw}: không đọc được tệp PDF / cannot read the PDF ({exc})", file=sys.stderr)
            exit_code = errors.INPUT_FILE
            continue
        if not all(result.ok for result in results) and exit_code == errors.OK:
            exit_code = errors.FORMAT_RULES
        if args.json:
            print(json.dumps({"file": raw, "rules": [r.to_json() for r in results]}, ensure_ascii=False))
            continue
        print(raw)
        for result in results:
            print(f"  {'đạt / pass' if result.ok else 'KHÔNG ĐẠT / FAIL':18} {result.rule:12} {result.detail}")
    return exit_code


# --- web page and its accounts (issue 14) ---
def _read_password(args: argparse.Namespace) -> str:
    """One line from stdin with --password-stdin (scripts), else asked twice without echo."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass
    first = getpass.getpass("Mật khẩu / Password: ")
    if getpass.getpass("Nhập lại / Again: ") != first:
        raise accounts.AccountError("Hai lần nhập mật khẩu khác nhau.", "The two passwords differ.")
    return first


def cmd_user_add(args: argparse.Namespace, config: dict) -> int:
    accounts.add(_catalogue(config), args.name, args.role, _read_password(args), decisions.cli_actor())
    print(f"Đã thêm / added: {accounts.check_name(args.name)} ({args.role})")
    return errors.OK


def cmd_user_list(args: argparse.Namespace, config: dict) -> int:
    for user in store.list_users(_catalogue(config)):
        if args.json:
            print(json.dumps(user, ensure_ascii=False))
        else:
            state = "đã khóa / disabled" if user["disabled"] else "hoạt động / active"
            print(f"{user['name']:24} {user['role']:10} {state}")
    return errors.OK


def cmd_user_disable(args: argparse.Namespace, config: dict) -> int:
    accounts.disable(_catalogue(config), args.name, decisions.cli_actor())
    print(f"Đã khóa / disabled: {args.name}")
    return errors.OK


def cmd_user_passwd(args: argparse.Namespace, config: dict) -> int:
    accounts.set_password(_catalogue(config), args.name, _read_password(args), decisions.cli_actor())
    print(f"Đã đổi mật khẩu / password changed: {args.name}")
    return errors.OK


def cmd_serve(args: argparse.Namespace, config: dict) -> int:
    from .web import serve
    return serve(config, args.host, args.port)


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
    process.add_argument("--queue", action="store_true",
                         help="send the files to the workers (DIGITIZE_BROKER_URL) instead of running here")
    process.add_argument("--wait", action="store_true", help="with --queue: wait for every result and print it")
    process.set_defaults(handler=cmd_process)

    again = commands.add_parser("reprocess", help="run catalogued documents through the pipeline again")
    reprocess.add_arguments(again)
    again.set_defaults(handler=cmd_reprocess)

    cover = commands.add_parser("coverage", help="digitisation and timeliness per period (default: this quarter)")
    chosen = cover.add_mutually_exclusive_group()
    chosen.add_argument("--quarter", metavar="2024-Q3")
    chosen.add_argument("--month", metavar="2024-09")
    chosen.add_argument("--year", metavar="2024", help="each quarter, then the whole year")
    chosen.add_argument("--from", dest="from_day", metavar="DAY", help="custom period start (with --to)")
    cover.add_argument("--to", dest="to_day", metavar="DAY", help="custom period end, inclusive")
    cover.add_argument("--by", choices=tuple(reports.BREAKDOWN_KEYS), help="breakdown rows")
    cover.add_argument("--format", choices=("table", "csv", "json", "xlsx", "html"), default="table")
    cover.add_argument("--out", metavar="FILE", help="write to FILE instead of the terminal")
    cover.add_argument("--lang", choices=("vi", "en"), default="vi")
    cover.set_defaults(handler=cmd_coverage)

    report = commands.add_parser("report", help="XLSX workbook and HTML page for one period")
    report.add_argument("--period", metavar="2024-Q3", help="quarter, month or year (default: this quarter)")
    report.add_argument("--out", metavar="DIR", required=True)
    report.add_argument("--lang", choices=("vi", "en"), default="vi")
    report.set_defaults(handler=cmd_report)

    reg = commands.add_parser("registry", help="the dossier list from the one-stop software")
    reg_commands = reg.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    reg_import = reg_commands.add_parser("import", help="load a CSV or XLSX export (idempotent)")
    reg_import.add_argument("file", type=Path, metavar="FILE")
    reg_import.add_argument("--json", action="store_true")
    reg_import.set_defaults(handler=cmd_registry_import)
    reg_list = reg_commands.add_parser("list", help="dossiers loaded, by received date")
    reg_list.add_argument("--quarter", metavar="2024-Q3")
    reg_list.add_argument("--json", action="store_true", help="one JSON object per dossier")
    reg_list.set_defaults(handler=cmd_registry_list)

    review = commands.add_parser("review", help="documents waiting for a link decision, with candidates")
    review.add_argument("--json", action="store_true", help="one JSON object per document")
    review.set_defaults(handler=cmd_review)
    by_hand = commands.add_parser("link", help="link a document to a dossier by hand")
    by_hand.add_argument("document", type=_document_number, metavar="DOC", help="document number (see: digitize review)")
    by_hand.add_argument("dossier", metavar="DOSSIER", help="dossier code")
    by_hand.set_defaults(handler=cmd_link)
    unlink = commands.add_parser("unlink", help="remove a document's link by hand")
    unlink.add_argument("document", type=_document_number, metavar="DOC")
    unlink.set_defaults(handler=cmd_unlink)
    sheets = commands.add_parser("coversheet", help="print cover sheets that separate dossiers in one feed")
    sheets.add_argument("codes", nargs="+", metavar="CODE")
    sheets.add_argument("--out", required=True, metavar="FILE.pdf")
    sheets.set_defaults(handler=cmd_coversheet)

    watcher = commands.add_parser("watch", help="the watched inbox as a service (foreground)")
    watcher.add_argument("--once", action="store_true", help="process what is in the inbox, then exit")
    watcher.add_argument("--polling", action="store_true", help="rescan instead of file events (SMB/NFS)")
    watcher.set_defaults(handler=cmd_watch)
    catalogue = commands.add_parser("catalogue", help="the catalogue itself")
    catalogue_commands = catalogue.add_subparsers(dest="catalogue_command", required=True, metavar="ACTION")
    rebuilt = catalogue_commands.add_parser("rebuild", help="rebuild the catalogue from the archive's PDFs")
    rebuilt.add_argument("--json", action="store_true")
    rebuilt.set_defaults(handler=cmd_catalogue_rebuild)
    worker = commands.add_parser("worker", help="take documents from the queue (DIGITIZE_BROKER_URL) until stopped")
    worker.add_argument("--concurrency", type=int, metavar="N", help="documents at once (default: cores)")
    worker.add_argument("--name", metavar="NAME", help="worker name (default: digitize-PID@HOST)")
    worker.set_defaults(handler=cmd_worker)
    state = commands.add_parser("status", help="the watcher: waiting, in progress, done, failed, heartbeat")
    state.add_argument("--json", action="store_true")
    state.set_defaults(handler=cmd_status)

    signer = commands.add_parser("sign", help="sign digitised copies (PAdES) in place, atomically")
    signer.add_argument("paths", nargs="*", metavar="FILE.pdf", help="PDFs to sign (or select catalogued ones)")
    reprocess.add_selectors(signer)
    key = signer.add_argument_group("khóa ký / key (default: [signing] in the configuration)")
    key.add_argument("--pkcs12", metavar="KEY.p12", help="a PKCS#12 file")
    key.add_argument("--pkcs11-module", metavar="LIB.so", help="the token's PKCS#11 module")
    key.add_argument("--token-label", metavar="LABEL")
    key.add_argument("--key-label", metavar="LABEL", help="the key (and certificate) on the token")
    key.add_argument("--password-env", metavar="VAR", help="environment variable holding the password or PIN")
    key.add_argument("--password-file", metavar="FILE", help="file holding it (readable by its owner only)")
    signer.add_argument("--officer", metavar="NAME", help="the digitising officer, for [signing.officers] keys")
    signer.add_argument("--invisible", action="store_true", help="no box on page 1")
    signer.add_argument("--timestamp-url", metavar="URL", help="RFC 3161 timestamp server (PAdES B-T)")
    signer.add_argument("--json", action="store_true", help="one JSON object per file")
    signer.set_defaults(handler=cmd_sign)
    verify = commands.add_parser("verify", help="check the digital signatures of PDFs (exit 11 if one is broken)")
    verify.add_argument("files", nargs="+", metavar="FILE.pdf")
    verify.add_argument("--trust", action="append", metavar="CA.pem", help="also trust this CA (repeatable)")
    verify.add_argument("--json", action="store_true", help="one JSON object per file")
    verify.set_defaults(handler=cmd_verify)
    rules = commands.add_parser("check", help="the format rules for digitised copies, per file (exit 13 if one fails)")
    rules.add_argument("files", nargs="+", metavar="FILE.pdf")
    rules.add_argument("--trust", action="append", metavar="CA.pem", help="also trust this CA (repeatable)")
    rules.add_argument("--json", action="store_true", help="one JSON object per file")
    rules.set_defaults(handler=cmd_check)

    user = commands.add_parser("user", help="accounts of the web page")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    user_add = user_commands.add_parser("add", help="a new account")
    user_add.add_argument("name", metavar="NAME")
    user_add.add_argument("--role", choices=accounts.ROLES, required=True)
    user_add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    user_add.set_defaults(handler=cmd_user_add)
    user_list = user_commands.add_parser("list", help="accounts and their roles")
    user_list.add_argument("--json", action="store_true")
    user_list.set_defaults(handler=cmd_user_list)
    user_disable = user_commands.add_parser("disable", help="lock an account and end its sessions")
    user_disable.add_argument("name", metavar="NAME")
    user_disable.set_defaults(handler=cmd_user_disable)
    user_passwd = user_commands.add_parser("passwd", help="set a new password (ends its sessions)")
    user_passwd.add_argument("name", metavar="NAME")
    user_passwd.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    user_passwd.set_defaults(handler=cmd_user_passwd)

    server = commands.add_parser("serve", help="the office's web page (review, search, coverage)")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=8080)
    server.set_defaults(handler=cmd_serve)

    return parser


def _document_number(text: str) -> int:
    """A document number as the catalogue can hold it (SQLite integers are 64-bit)."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= SQLITE_MAX_ID:
        raise argparse.ArgumentTypeError(f"số tài liệu không hợp lệ / not a document number: {text!r} "
                                         "(xem / see: digitize review)")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    workers = getattr(args, "workers", None)
    if workers is not None and not 0 <= workers <= MAX_WORKERS:
        parser.error(f"--workers phải từ 0 đến {MAX_WORKERS} (0 = theo cấu hình) / "
                     f"--workers must be 0 to {MAX_WORKERS} (0 = as configured), not {workers}")
    # SIGTERM (systemd, kill, a job scheduler) stops a command as Ctrl-C does: cleanly, exit 130.
    # The watcher installs its own handler (finish the pages in flight, exit 0).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        config = site_config.load_config()
        apply_umask(int(config["paths"]["umask"], 8))
        return args.handler(args, config)
    except sqlite3.DatabaseError as exc:  # the catalogue damaged while a command ran
        error = store.damaged(site_config.resolve_paths(config)["catalogue"], exc)
    except errors.DigitizeError as exc:
        error = exc
    except KeyboardInterrupt:
        print("Đã dừng. / Interrupted.", file=sys.stderr)
        return errors.INTERRUPTED
    except Exception as exc:  # a bug: still one line and exit 15, not a traceback
        error = errors.DigitizeError("Lỗi không mong đợi.", f"Unexpected error: {type(exc).__name__}: {exc}")
    print(f"lỗi / error: {shown(error.one_line())}\n  → {error.advice_vi} / {error.advice_en}", file=sys.stderr)
    return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
