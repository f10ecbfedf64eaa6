"""`digitize reprocess`: run catalogued documents through the pipeline again.

Selectors combine (AND); the chosen documents' pages all go through the
engine's one process pool. Safe to interrupt: a run is keyed by a hash of
its selection, its mode and the pipeline definitions (for --relink-only, the
registry's state instead), and remembers which documents it finished. A
document is finished when its new PDF and sidecar have been renamed over
the old ones and its catalogue rows (document, pages, a new version, the run
item) are committed in one transaction. Running the same command again
continues with the unfinished documents; once all are finished it does
nothing (twice = once) unless --force. A change to a pipeline definition or
to the selection is a new run. Manual links are never touched.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, time as day_time, timedelta, timezone
from pathlib import Path
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from . import codes, config as site_config, errors, filing, jobs, link, pages, periods, pipelines, programs, store
from .models import DONE, DocumentResult, LinkDecision
from .files import sha256_of

DEFAULT_SECONDS_PER_PAGE = 1.5  # per worker, until a run here has measured it


class SelectionError(errors.DigitizeError):
    exit_code = errors.BAD_ARGS


@dataclass
class Tally:
    documents: int = 0
    pages: int = 0
    done: int = 0
    failed: int = 0
    missing: int = 0
    links_changed: int = 0
    pages_done: int = 0
    started: float = field(default_factory=time.monotonic)

    def pages_per_minute(self) -> float:
        elapsed = time.monotonic() - self.started
        return 60.0 * self.pages_done / elapsed if elapsed > 0 and self.pages_done else 0.0

    def eta_seconds(self) -> float | None:
        rate = self.pages_per_minute()
        return 60.0 * (self.pages - self.pages_done) / rate if rate else None

    def finished(self) -> int:
        return self.done + self.failed + self.missing


def _local_day_start_utc(day: date) -> str:
    return datetime.combine(day, day_time.min).astimezone().astimezone(timezone.utc).isoformat(timespec="seconds")


def selection_of(args, config: dict) -> dict:
    """The selectors as plain data (it is hashed into the run key, so normalised)."""
    span = None
    if args.quarter or args.from_day or args.to_day:
        span = periods.select(args.quarter, None, None, args.from_day, args.to_day,
                              cutoff_day=config["periods"]["cutoff_day"], today=date.today())[0]
    chosen = {
        "from": span.start.isoformat() if span else None,
        "to": span.end.isoformat() if span else None,
        "dossier": codes.normalise_code(args.dossier) if args.dossier else None,
        "status": args.status,
        "made_by_older": bool(args.made_by_older),
        "source": args.source,
    }
    if not args.all and not any(chosen.values()):
        raise SelectionError(
            "Hãy chọn tài liệu: --all hoặc --quarter, --from/--to, --dossier, --status, --made-by-older, --source.",
            "Choose documents: --all or --quarter, --from/--to, --dossier, --status, --made-by-older, --source.",
        )
    return chosen


def _pipeline_for(document: dict, chosen: str | None, config: dict) -> str:
    if chosen:
        return chosen
    own = document.get("pipeline")
    return own if own in pipelines.available() else config["processing"]["pipeline"]


def select(conn: sqlite3.Connection, chosen: dict, pipeline_name: str | None, ocr: bool) -> list[dict]:
    definitions = {name: pipelines.load_pipeline(name)["hash"] for name in pipelines.available()}
    if pipeline_name:
        target = pipelines.load_pipeline(pipeline_name)["hash"]
        definitions = {name: target for name in definitions}
    return store.select_for_reprocess(
        conn,
        created_from=_local_day_start_utc(date.fromisoformat(chosen["from"])) if chosen["from"] else None,
        created_to=(_local_day_start_utc(date.fromisoformat(chosen["to"]) + timedelta(days=1))
                    if chosen["to"] else None),
        dossier=chosen["dossier"], status=chosen["status"],
        older_than=definitions if chosen["made_by_older"] else None,
        source_glob=chosen["source"],
        # OCR replaces a whole file's output; a feed split into parts is relinked, not re-OCRed per part.
        first_part_only=ocr,
    )


def run_key(conn: sqlite3.Connection, chosen: dict, pipeline_name: str | None, relink_only: bool) -> str:
    if relink_only:
        basis = {"mode": "relink", "registry": store.registry_stamp(conn)}
    else:
        basis = {"mode": "ocr", "pipeline": pipeline_name,
                 "definitions": {n: pipelines.load_pipeline(n)["hash"] for n in pipelines.available()}}
    canonical = json.dumps({"selection": chosen, **basis}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def original_of(document: dict) -> Path:
    return Path(document.get("original") or document["source"])


def page_count(document: dict, config: dict) -> int:
    if document.get("page_count"):
        return int(document["page_count"])
    try:
        return pages.inspect(original_of(document), config, force=True).page_count
    except (errors.DigitizeError, OSError):
        return 1


def _barcodes_per_page(document: dict, page_total: int) -> list[list[dict]]:
    """The QR codes and barcodes found when the pages were scanned, from the stored fields."""
    found: list[list[dict]] = [[] for _ in range(page_total)]
    for code in (document.get("fields") or {}).get("codes") or []:
        page = code.get("page")
        if code["source"] in ("qr", "barcode") and page and 1 <= page <= page_total:
            found[page - 1].append({"text": code["code"], "kind": code["source"]})
    return found


def new_link(document: dict, pages_text: list[str], registry: list[dict]) -> tuple[LinkDecision, dict]:
    """Extraction and linking again on the stored text (no OCR): the decision and the fields."""
    analysis = link.analyse_document(pages_text, _barcodes_per_page(document, len(pages_text)),
                                     Path(document["source"]).name, registry)
    return LinkDecision.from_mapping(analysis["link"]), analysis["fields"]


def link_changed(document: dict, decided: LinkDecision | None) -> bool:
    """Whether an automatic decision points the document elsewhere (a manual link is never changed)."""
    if decided is None or document.get("link_method") == "manual":
        return False
    return (document.get("dossier_code"), document.get("link_status") or "none") != (decided.dossier, decided.status)


class Reporter:
    """A rich progress bar on a terminal, JSON lines with --json, plain lines otherwise."""

    def __init__(self, tally: Tally, as_json: bool):
        self.tally = tally
        self.as_json = as_json
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.fields[docs]} tài liệu/docs · {task.completed:.0f}/{task.total:.0f} trang/pages"),
            TextColumn("{task.fields[rate]:.1f} trang/phút · pages/min"), TimeRemainingColumn(),
            console=Console(stderr=True), disable=as_json or not sys.stderr.isatty(), transient=False,
        )
        self.task = self.progress.add_task("xử lý lại / reprocess", total=max(tally.pages, 1), docs="0/0", rate=0.0)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *_):
        self.progress.stop()

    def _refresh(self) -> None:
        self.progress.update(self.task, completed=self.tally.pages_done, rate=self.tally.pages_per_minute(),
                             docs=f"{self.tally.finished()}/{self.tally.documents}")

    def page(self, _source: str) -> None:
        self.tally.pages_done += 1
        self._refresh()

    def document(self, document: dict, status: str, output: str | None = None, error: str | None = None,
                 link_changed: bool = False) -> None:
        self._refresh()
        tally = self.tally
        if self.as_json:
            eta = tally.eta_seconds()
            print(json.dumps({
                "event": "document", "id": document["id"], "source": document["source"], "status": status,
                "output": output, "error": error, "link_changed": link_changed,
                "documents_done": tally.finished(), "documents_total": tally.documents,
                "pages_done": tally.pages_done, "pages_total": tally.pages,
                "pages_per_minute": round(tally.pages_per_minute(), 1),
                "eta_seconds": round(eta) if eta is not None else None,
            }, ensure_ascii=False), flush=True)
            return
        line = f"{status:8} {document['source']}" + (f": {error}" if error else f" → {output}" if output else "")
        if self.progress.disable:
            print(line, flush=True)
        else:  # above the bar, on the terminal
            self.progress.console.print(line, markup=False, highlight=False)


def _summary(tally: Tally, as_json: bool, interrupted: bool, stopped: str | None) -> None:
    if as_json:
        print(json.dumps({"event": "summary", "documents": tally.documents, "done": tally.done,
                          "failed": tally.failed, "missing": tally.missing, "links_changed": tally.links_changed,
                          "pages": tally.pages_done, "pages_per_minute": round(tally.pages_per_minute(), 1),
                          "interrupted": interrupted, "stopped": stopped}, ensure_ascii=False), flush=True)
        return
    print(f"Xong {tally.done}, lỗi {tally.failed}, thiếu bản gốc {tally.missing}, đổi liên kết {tally.links_changed} "
          f"/ done {tally.done}, failed {tally.failed}, original missing {tally.missing}, "
          f"links changed {tally.links_changed} ({tally.pages_done} trang/pages, "
          f"{tally.pages_per_minute():.1f} trang/phút · pages/min)", flush=True)
    if stopped:
        print(f"Đã dừng lô / batch stopped: {stopped}", file=sys.stderr)
    if interrupted or stopped:
        print("Chạy lại đúng lệnh này để tiếp tục. / Run the same command again to continue.", file=sys.stderr)


def _dry_run(conn, key: str, documents: list[dict], done_ids: set[int], args, config: dict, workers: int) -> int:
    todo = [d for d in documents if d["id"] not in done_ids]
    planned = [{"id": d["id"], "source": d["source"], "pages": page_count(d, config),
                "pipeline": d.get("pipeline"), "target_pipeline": None if args.relink_only
                else _pipeline_for(d, args.pipeline, config), "original_present": original_of(d).is_file()}
               for d in todo]
    total_pages = sum(p["pages"] for p in planned)
    per_page = store.seconds_per_page_per_worker(conn) or DEFAULT_SECONDS_PER_PAGE
    seconds = 0.0 if args.relink_only else total_pages * per_page / workers
    if args.json:
        print(json.dumps({"event": "plan", "run": key, "documents": planned, "pages": total_pages,
                          "already_done": len(documents) - len(todo), "workers": workers,
                          "seconds_per_page_per_worker": per_page, "estimate_seconds": round(seconds)},
                         ensure_ascii=False))
        return errors.OK
    for item in planned:
        note = "" if item["original_present"] else "  (thiếu bản gốc / original missing)"
        target = "liên kết lại / relink" if args.relink_only else f"{item['pipeline']} → {item['target_pipeline']}"
        print(f"#{item['id']:<6} {item['pages']:>4} trang/pages  {target}  {item['source']}{note}")
    print(f"Sẽ xử lý {len(planned)} tài liệu, {total_pages} trang, khoảng {seconds / 60:.1f} phút với {workers} "
          f"tiến trình / would process {len(planned)} documents, {total_pages} pages, about {seconds / 60:.1f} min "
          f"with {workers} workers ({per_page:.2f} s/page/worker); đã xong / already done: {len(documents) - len(todo)}")
    return errors.OK


def _ocr_batch(conn, key: str, todo: list[dict], args, config: dict, workers: int, reporter: Reporter,
               registry: list[dict]) -> tuple[int, str | None]:
    """OCR the documents again through one pool per target pipeline; (exit code, why the batch stopped)."""
    tally = reporter.tally
    paths = site_config.resolve_paths(config)
    site_config.ensure_folders(paths)
    exit_code = errors.OK
    groups: dict[str, list[tuple[dict, Path]]] = {}
    for document in todo:
        original = original_of(document)
        problem = None
        if not original.is_file():
            problem = errors.InputFileError(f"Không tìm thấy bản gốc: {original}", f"Original not found: {original}")
        elif sha256_of(original) != document["sha256"]:
            problem = errors.InputFileError(f"Bản gốc đã bị thay đổi: {original}",
                                            f"The original has changed since it was processed: {original}")
        if problem:
            with store.transaction(conn):
                store.finish_item(conn, key, document["id"], "missing", problem.one_line())
            tally.missing += 1
            exit_code = exit_code or problem.exit_code
            reporter.document(document, "missing", error=problem.one_line())
            continue
        groups.setdefault(_pipeline_for(document, args.pipeline, config), []).append((document, original))

    for name, members in groups.items():
        pipeline = pipelines.load_pipeline(name)
        programs.versions(pipeline["ocr"]["lang"])
        by_original = {str(original.absolute()): document for document, original in members}

        def finish_item(taken: jobs.Intake, result: DocumentResult):
            document = by_original[str(taken.path.absolute())]
            changed = link_changed(document, result.link)
            tally.links_changed += changed
            return lambda conn: store.finish_item(conn, key, document["id"], "done", link_changed=changed)

        run = jobs.Run(pipeline, config, jobs.Destination(paths["archive"]), workers, paths["work"],
                       on_page=reporter.page, also=finish_item)
        intakes = [jobs.Intake(original, document["source"], document["officer"], document["original"])
                   for document, original in members]
        results = jobs.process(intakes, run, conn)
        try:
            for taken, result in results:
                document = by_original[str(taken.path.absolute())]
                if result.status != DONE:
                    with store.transaction(conn):
                        store.finish_item(conn, key, document["id"], "failed", result.error)
                    tally.failed += 1
                    exit_code = exit_code or result.exit_code
                    reporter.document(document, "failed", error=result.error)
                    if result.exit_code == errors.OUTPUT_FILE:
                        return errors.OUTPUT_FILE, result.error
                    continue
                tally.done += 1
                reporter.document(document, "done", output=result.output, link_changed=link_changed(document, result.link))
        except sqlite3.OperationalError as exc:  # disk full or catalogue locked
            return errors.OUTPUT_FILE, f"catalogue: {exc}"
        finally:
            results.close()  # shuts the pool down when the batch stops early
    return exit_code, None


def _relink_batch(conn, key: str, todo: list[dict], reporter: Reporter, registry: list[dict],
                  archive: Path) -> None:
    tally = reporter.tally
    for document in todo:
        texts = [page["text"] or "" for page in store.get_pages(conn, document["id"])]
        decided, fields = new_link(document, texts, registry) if texts else (None, None)
        changed = link_changed(document, decided)
        store.save_relinked(conn, key, document["id"], decided, fields, changed)
        moved = filing.refile(conn, document["id"], archive) if changed else None
        tally.done += 1
        tally.pages_done += len(texts)
        tally.links_changed += changed
        reporter.document(document, "done", output=str(moved or document.get("output")), link_changed=changed)


def reprocess(args, config: dict) -> int:
    chosen = selection_of(args, config)
    if args.pipeline:
        pipelines.load_pipeline(args.pipeline)  # an unknown name fails before anything runs
    workers = args.workers or site_config.worker_count(config)
    conn = store.connect(site_config.resolve_paths(config)["catalogue"])
    documents = select(conn, chosen, args.pipeline, ocr=not args.relink_only)
    if not documents:
        message = "Không có tài liệu nào khớp điều kiện chọn. / No documents match the selection."
        print(json.dumps({"event": "summary", "documents": 0, "message": message}, ensure_ascii=False)
              if args.json else message)
        return errors.OK
    key = run_key(conn, chosen, args.pipeline, args.relink_only)
    done_ids = set() if args.force else {item["document_id"] for item in store.run_items(conn, key, "done")}
    if args.dry_run:
        return _dry_run(conn, key, documents, done_ids, args, config, workers)

    store.open_run(conn, key, chosen, [d["id"] for d in documents], restart=args.force)
    pending = {item["document_id"] for item in store.run_items(conn, key, "pending")}
    todo = [store.get_document(conn, document_id) for document_id in sorted(pending)]
    if not todo:
        store.add_run_time(conn, key, 0, 0.0, workers, finished=True)
        message = (f"Đã xử lý xong {len(documents)} tài liệu này trong lần chạy trước; dùng --force để làm lại. "
                   f"/ These {len(documents)} documents were already done by an earlier run; use --force to redo.")
        print(json.dumps({"event": "summary", "documents": 0, "already_done": len(documents), "message": message},
                         ensure_ascii=False) if args.json else message)
        return errors.OK

    if args.queue:
        return _enqueue(key, todo, args, config)
    tally = Tally(documents=len(todo), pages=sum(page_count(d, config) for d in todo))
    registry = store.list_dossiers(conn)
    interrupted, stopped, exit_code = False, None, errors.OK
    try:
        with Reporter(tally, args.json) as reporter:
            if args.relink_only:
                _relink_batch(conn, key, todo, reporter, registry, site_config.resolve_paths(config)["archive"])
            else:
                exit_code, stopped = _ocr_batch(conn, key, todo, args, config, workers, reporter, registry)
    except KeyboardInterrupt:
        interrupted, exit_code = True, errors.INTERRUPTED
    finally:
        complete = not (interrupted or stopped) and not store.run_items(conn, key, "pending")
        store.add_run_time(conn, key, 0 if args.relink_only else tally.pages_done,
                           time.monotonic() - tally.started, workers, finished=complete)
    _summary(tally, args.json, interrupted, stopped)
    return exit_code


def _enqueue(key: str, todo: list[dict], args, config: dict) -> int:
    """--queue: the run's pending documents sent to the workers (queue.py), each marking its item."""
    from . import queue
    url = queue.required_broker()
    sent = queue.enqueue(url, queue.reprocess_jobs(key, todo, {d["id"]: _pipeline_for(d, args.pipeline, config)
                                                              for d in todo}))
    message = (f"Đã gửi {len(sent)} tài liệu vào hàng đợi / {len(sent)} documents queued "
               f"(lần chạy / run {key[:12]}; chạy lại lệnh này để xem tiến độ / run this command again to see progress)")
    print(json.dumps({"event": "queued", "documents": len(sent), "run": key}, ensure_ascii=False)
          if args.json else message)
    return errors.OK


def add_selectors(parser) -> None:
    """The document selectors, shared by `reprocess` and `sign`."""
    chosen = parser.add_argument_group("chọn tài liệu / selection (combined with AND)")
    chosen.add_argument("--all", action="store_true", help="every catalogued document")
    chosen.add_argument("--quarter", metavar="2024-Q3", help="catalogued in this quarter")
    chosen.add_argument("--from", dest="from_day", metavar="DAY", help="catalogued on or after DAY (with --to)")
    chosen.add_argument("--to", dest="to_day", metavar="DAY", help="catalogued on or before DAY")
    chosen.add_argument("--dossier", metavar="CODE", help="linked to this dossier")
    chosen.add_argument("--status", choices=("failed", "review", "unlinked"))
    chosen.add_argument("--made-by-older", action="store_true",
                        help="made by an older definition of the pipeline (hash differs from the current one)")
    chosen.add_argument("--source", metavar="GLOB", help="source path matches GLOB, e.g. '*/2024-12/*.pdf'")


def add_arguments(parser) -> None:
    add_selectors(parser)
    parser.add_argument("--pipeline", metavar="NAME", help="use this pipeline (default: each document's own)")
    parser.add_argument("--relink-only", action="store_true",
                        help="extraction and linking again on the stored text, no OCR")
    parser.add_argument("--workers", type=int, metavar="N", help="worker processes (default: cores)")
    parser.add_argument("--dry-run", action="store_true", help="show what would run, pages and a time estimate")
    parser.add_argument("--json", action="store_true", help="JSON lines: one per document, then a summary")
    parser.add_argument("--force", action="store_true", help="redo documents an earlier run already finished")
    parser.add_argument("--queue", action="store_true",
                        help="send the documents to the workers (DIGITIZE_BROKER_URL) instead of running here")
