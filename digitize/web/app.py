"""The office's web page: an ASGI app (Starlette, Jinja2, htmx served from static/).

Every route goes through `endpoint`, which opens the catalogue for the
request (in a worker thread: SQLite waits on a busy catalogue up to its busy
timeout instead of failing, and the event loop keeps serving), finds the
session, checks the role and, on every state-changing request, the CSRF token.
Pages without a session redirect to /login; /api/* answers 401. The same
functions as the commands do the work: decisions.link_by_hand/unlink_by_hand
and import_registry, reports.for_options, status.status.
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from functools import wraps
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import accounts, config as site_config, decisions, errors, layout, periods as period_rules, reports, store
from ..privacy import mask_cccd, mask_ids
from ..status import status as watch_status
from . import search as finder
from .i18n import LANGS, field_label, translate
from .thumbs import thumbnail

HERE = Path(__file__).resolve().parent
COOKIE = "digitize_session"
LOGIN_COOKIE = "digitize_login"  # the login form's CSRF token, before there is a session
LANG_COOKIE = "digitize_lang"
CSRF_HEADER = "x-csrf-token"
WRITERS = ("officer", "admin")
ADMINS = ("admin",)
UPLOAD_LIMIT = 20 * 1024 * 1024
IP_FACTOR = 4
log = logging.getLogger("digitize.web")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "object-src 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Ctx:
    """What a handler gets: the request, its catalogue connection, the user, the language, the form."""

    def __init__(self, app: "WebApp", request: Request, conn, user: dict | None, lang: str, form: dict):
        self.app, self.request, self.conn, self.user, self.lang, self.form = app, request, conn, user, lang, form

    def t(self, key: str, **values) -> str:
        return translate(key, self.lang, **values)

    def render(self, template: str, status_code: int = 200, **values) -> HTMLResponse:
        return HTMLResponse(self.app.render(template, self, **values), status_code=status_code)

    @property
    def htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    @property
    def can_write(self) -> bool:
        return bool(self.user) and self.user["role"] in WRITERS

    @property
    def is_admin(self) -> bool:
        return bool(self.user) and self.user["role"] in ADMINS


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _local_path(target: str | None) -> str:
    """Only a path on this site is a place to go back to (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


class WebApp:
    def __init__(self, config: dict):
        self.config = config
        self.paths = site_config.resolve_paths(config)
        site_config.ensure_folders(self.paths)
        web = config["web"]  # validated against config/default.toml's [web]
        self.session_hours = float(web["session_hours"])
        self.secure = web["secure_cookies"]
        self.attempts = web["login_attempts"]
        self.lockout = web["lockout_minutes"] * 60
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"),
                               autoescape=select_autoescape(default=True, default_for_string=True))
        self.env.filters["masked"] = mask_cccd
        self.env.filters["masked_ids"] = mask_ids
        self.env.filters["basename"] = lambda value: Path(value).name if value else ""
        self.env.filters["percent"] = lambda value, lang: reports.percent(value, lang)
        self.env.filters["day"] = reports.day_text
        self.env.filters["stamp"] = local_time
        self.env.filters["urlpart"] = lambda value: quote(str(value), safe="")
        store.connect(self.paths["catalogue"]).close()  # schema in place before the first request

    def render(self, template: str, ctx: Ctx, **values) -> str:
        return self.env.get_template(template).render(
            t=ctx.t, field_label=lambda key: field_label(key, ctx.lang), lang=ctx.lang, user=ctx.user,
            can_write=ctx.can_write, is_admin=ctx.is_admin, csrf=ctx.user["csrf"] if ctx.user else "", path=ctx.request.url.path,
            here=str(ctx.request.url.path) + (f"?{ctx.request.url.query}" if ctx.request.url.query else ""),
            reports=reports, **values)

    def connect(self):
        return store.connect(self.paths["catalogue"])

    def lang_of(self, request: Request) -> str:
        lang = request.cookies.get(LANG_COOKIE, "vi")
        return lang if lang in LANGS else "vi"


def endpoint(app: WebApp, roles: tuple[str, ...] | None = ("officer", "supervisor", "admin")):
    """Wrap a handler(ctx) -> Response: session, role, CSRF, errors, then the handler in a thread.

    roles=None: no session needed (login, health). A POST/PUT/PATCH/DELETE needs the
    session's CSRF token in the form field `csrf` or the X-CSRF-Token header.
    """
    def decorate(handler: Callable[[Ctx], Response]):
        @wraps(handler)
        async def run(request: Request) -> Response:
            form: dict = {}
            changes = request.method not in ("GET", "HEAD")
            content_type = request.headers.get("content-type", "")
            if changes and content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
                if int(request.headers.get("content-length") or 0) > UPLOAD_LIMIT:
                    return Response("too large", status_code=413)
                form = dict(await request.form(max_part_size=UPLOAD_LIMIT))
            elif changes and content_type.startswith("application/json"):
                try:
                    body = json.loads(await request.body() or b"{}")
                except ValueError:
                    body = None
                form = body if isinstance(body, dict) else {"_bad_json": True}
            return await run_in_threadpool(_serve, request, form)

        def _serve(request: Request, form: dict) -> Response:
            lang = app.lang_of(request)
            conn = app.connect()
            try:
                user = None
                token = request.cookies.get(COOKIE)
                if token:
                    user = store.session_user(conn, _token_hash(token))
                ctx = Ctx(app, request, conn, user, lang, form)
                if roles is not None:
                    if user is None:
                        if _is_api(request):
                            return JSONResponse({"error": "login required"}, status_code=401)
                        return RedirectResponse("/login?next=" + quote(_local_path(
                            request.url.path + (f"?{request.url.query}" if request.url.query else "")), safe=""),
                            status_code=303)
                    if user["role"] not in roles:
                        return _refuse(ctx, 403, "forbidden")
                    if request.method not in ("GET", "HEAD"):
                        sent = request.headers.get(CSRF_HEADER) or form.get("csrf") or ""
                        if not isinstance(sent, str) or not secrets.compare_digest(sent, user["csrf"]):
                            return _refuse(ctx, 403, "csrf")
                try:
                    return handler(ctx)
                except errors.DigitizeError as exc:
                    if _is_api(request):
                        return JSONResponse({"error": {"vi": exc.vi, "en": exc.en}}, status_code=400)
                    return _error_page(ctx, 400, exc.vi if lang == "vi" else exc.en,
                                       exc.advice_vi if lang == "vi" else exc.advice_en)
            finally:
                conn.close()
        return run
    return decorate


def _refuse(ctx: Ctx, status_code: int, key: str) -> Response:
    if _is_api(ctx.request):
        return JSONResponse({"error": translate(key, "en")}, status_code=status_code)
    return _error_page(ctx, status_code, ctx.t(key), "")


def _error_page(ctx: Ctx, status_code: int, message: str, advice: str) -> Response:
    """An error page; for an htmx request, the message alone, shown in the page's #flash."""
    if ctx.htmx:
        response = ctx.render("flash.html", status_code=status_code, message=message, advice=advice)
        response.headers.update({"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
        return response
    return ctx.render("error.html", status_code=status_code, message=message, advice=advice)


def _masked_fields(fields: dict | None) -> dict:
    fields = dict(fields or {})
    if fields.get("cccd"):
        fields["cccd"] = mask_cccd(fields["cccd"])
    return fields


def local_time(value: str | None) -> str:
    """A stored UTC ISO time as the office reads it: the server's local time, day first."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).astimezone().strftime("%d/%m/%Y %H:%M:%S")
    except ValueError:
        return value


def archived_pdf(document: dict, archive: Path) -> Path | None:
    """The document's PDF when it is a file inside the archive; None otherwise (never a path outside it)."""
    if not document.get("output"):
        return None
    path = Path(document["output"]).resolve()
    if not path.is_relative_to(archive.resolve()) or path.suffix.lower() != ".pdf" or not path.is_file():
        return None
    return path


def build(config: dict) -> Starlette:
    app = WebApp(config)

    # --- sessions -------------------------------------------------------------
    def throttle_keys(ctx: Ctx, name: str) -> list[str]:
        client = ctx.request.client.host if ctx.request.client else "unknown"
        return [f"user:{name.lower()}", f"ip:{client}"]

    def locked_minutes(ctx: Ctx, keys: list[str]) -> int:
        now = time.time()
        until = max((row["locked_until"] or 0 for key in keys if (row := store.login_failures(ctx.conn, key))),
                    default=0)
        return int((until - now) // 60) + 1 if until > now else 0

    def note_failure(ctx: Ctx, keys: list[str]) -> None:
        now = time.time()
        with store.transaction(ctx.conn):
            for key in keys:
                row = store.login_failures(ctx.conn, key)
                if row is None or now - row["first_at"] > app.lockout:
                    failures, first = 1, now
                else:
                    failures, first = row["failures"] + 1, row["first_at"]
                # One address may try more names than one name may be tried (an office shares an address).
                limit = app.attempts * (IP_FACTOR if key.startswith("ip:") else 1)
                store.put_login_failures(ctx.conn, key, failures, first,
                                         now + app.lockout if failures >= limit else None)

    def login_form(ctx: Ctx, status_code: int = 200, **values) -> Response:
        """The login form with a fresh CSRF token, also set as a cookie (double submit: a page
        elsewhere can neither read the cookie nor post it)."""
        token = secrets.token_urlsafe(24)
        response = ctx.render("login.html", status_code=status_code, login_csrf=token, **values)
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                            secure=app.secure, path="/login")
        return response

    @endpoint(app, roles=None)
    def login_page(ctx: Ctx) -> Response:
        target = _local_path(ctx.request.query_params.get("next"))
        if ctx.user:
            return RedirectResponse(target, status_code=303)
        return login_form(ctx, next=target)

    @endpoint(app, roles=None)
    def login(ctx: Ctx) -> Response:
        name = str(ctx.form.get("name") or "").strip()
        password = str(ctx.form.get("password") or "")
        target = _local_path(str(ctx.form.get("next") or "/"))
        sent, expected = ctx.form.get("csrf"), ctx.request.cookies.get(LOGIN_COOKIE)
        if not isinstance(sent, str) or not expected or not secrets.compare_digest(sent, expected):
            return login_form(ctx, 403, next=target, name=name, error=ctx.t("csrf"))
        keys = throttle_keys(ctx, name)
        minutes = locked_minutes(ctx, keys)
        if minutes:
            return login_form(ctx, 429, next=target, name=name, error=ctx.t("throttled", minutes=minutes))
        user = accounts.verify(ctx.conn, name, password) if name and password else None
        if user is None:
            note_failure(ctx, keys)
            minutes = locked_minutes(ctx, keys)
            return login_form(ctx, 429 if minutes else 401, next=target, name=name,
                              error=ctx.t("throttled", minutes=minutes) if minutes else ctx.t("bad_login"))
        with store.transaction(ctx.conn):
            store.clear_login_failures(ctx.conn, keys[0])
            token = secrets.token_urlsafe(32)
            expires = datetime.now(timezone.utc) + timedelta(hours=app.session_hours)
            store.create_session(ctx.conn, _token_hash(token), user["id"], secrets.token_urlsafe(32),
                                 expires.isoformat(timespec="seconds"))
        response = RedirectResponse(target, status_code=303)
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        response.set_cookie(COOKIE, token, max_age=int(app.session_hours * 3600), httponly=True,
                            samesite="strict", secure=app.secure, path="/")
        log.info("login %s", user["name"])
        return response

    @endpoint(app)
    def logout(ctx: Ctx) -> Response:
        store.delete_session(ctx.conn, _token_hash(ctx.request.cookies.get(COOKIE, "")))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=app.secure)
        return response

    @endpoint(app, roles=None)
    def healthz(ctx: Ctx) -> Response:
        ctx.conn.execute("SELECT 1")
        return JSONResponse({"ok": True})

    @endpoint(app, roles=None)
    def set_lang(ctx: Ctx) -> Response:
        lang = ctx.request.path_params["lang"]
        response = RedirectResponse(_local_path(ctx.request.query_params.get("next")), status_code=303)
        if lang in LANGS:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict", secure=app.secure)
        return response

    @endpoint(app)
    def api_session(ctx: Ctx) -> Response:
        return JSONResponse({"user": ctx.user["name"], "role": ctx.user["role"], "csrf": ctx.user["csrf"],
                             "expires_at": ctx.user["expires_at"]})

    # --- home -------------------------------------------------------------------
    @endpoint(app)
    def home(ctx: Ctx) -> Response:
        state = watch_status(app.config)
        quarantined = store.recent_intake_events(ctx.conn, "quarantined", 10)
        return ctx.render("home.html", state=state, quarantined=quarantined)

    # --- review and linking ---------------------------------------------------
    def review_items(ctx: Ctx) -> list[dict]:
        items = []
        for document in store.documents_in_review(ctx.conn):
            candidates = []
            for candidate in document["candidates"] or []:
                dossier = store.get_dossier(ctx.conn, candidate["code"])
                candidates.append({**candidate, "applicant": dossier["applicant"] if dossier else None,
                                   "procedure_name": dossier["procedure_name"] if dossier else None})
            items.append({**document, "fields": _masked_fields(document["fields"]), "candidates": candidates})
        return items

    @endpoint(app)
    def review(ctx: Ctx) -> Response:
        return ctx.render("review.html", items=review_items(ctx))

    @endpoint(app)
    def api_review(ctx: Ctx) -> Response:
        return JSONResponse([{key: item[key] for key in ("id", "source", "output", "kind", "first_page", "page_count",
                                                          "fields", "candidates")}
                             for item in review_items(ctx)])

    def decided(ctx: Ctx, document_id: int) -> Response:
        """After a link or unlink by hand: the review item's new state (htmx), JSON, or back to the page."""
        document = store.get_document(ctx.conn, document_id)
        if _is_api(ctx.request):
            return JSONResponse({"document": document_id, "dossier": document["dossier_code"],
                                 "link_status": document["link_status"], "link_method": document["link_method"]})
        if ctx.htmx:
            return ctx.render("decided.html", document=document)
        back = _local_path(str(ctx.form.get("next") or f"/documents/{document_id}"))
        return RedirectResponse(back, status_code=303)

    @endpoint(app, roles=WRITERS)
    def link_document(ctx: Ctx) -> Response:
        document_id = ctx.request.path_params["document_id"]
        code = ctx.form.get("dossier")
        if not isinstance(code, str) or not code.strip():
            raise decisions.DecisionError("Chưa nhập mã hồ sơ.", "No dossier code given.")
        decisions.link_by_hand(ctx.conn, document_id, code, app.paths["archive"], ctx.user["name"])
        return decided(ctx, document_id)

    @endpoint(app, roles=WRITERS)
    def unlink_document(ctx: Ctx) -> Response:
        document_id = ctx.request.path_params["document_id"]
        decisions.unlink_by_hand(ctx.conn, document_id, app.paths["archive"], ctx.user["name"])
        return decided(ctx, document_id)

    # --- documents and dossiers ---------------------------------------------------
    @endpoint(app)
    def document_page(ctx: Ctx) -> Response:
        document = store.get_document(ctx.conn, ctx.request.path_params["document_id"])
        if document is None:
            return _refuse(ctx, 404, "not_found")
        dossier = store.get_dossier(ctx.conn, document["dossier_code"]) if document["dossier_code"] else None
        return ctx.render("document.html", document=document, dossier=dossier,
                          has_pdf=archived_pdf(document, app.paths["archive"]) is not None,
                          pages=store.get_pages(ctx.conn, document["id"]),
                          versions=store.document_versions(ctx.conn, document["id"]),
                          history=store.audit_entries(ctx.conn, document_id=document["id"]))

    @endpoint(app)
    def document_pdf(ctx: Ctx) -> Response:
        document = store.get_document(ctx.conn, ctx.request.path_params["document_id"])
        path = archived_pdf(document, app.paths["archive"]) if document else None
        if path is None:
            return _refuse(ctx, 404, "not_found")
        return FileResponse(path, media_type="application/pdf", headers={
            **SECURITY_HEADERS, "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.name)}"})

    @endpoint(app)
    def document_thumb(ctx: Ctx) -> Response:
        document = store.get_document(ctx.conn, ctx.request.path_params["document_id"])
        page = ctx.request.path_params["page"]
        path = archived_pdf(document, app.paths["archive"]) if document else None
        if path is None or not 1 <= page <= (document["page_count"] or 0):
            return _refuse(ctx, 404, "not_found")
        return Response(thumbnail(path, page, app.paths["work"], document["id"]),
                        media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    @endpoint(app)
    def dossier_page(ctx: Ctx) -> Response:
        dossier = store.get_dossier(ctx.conn, ctx.request.path_params["code"])
        if dossier is None:
            return _refuse(ctx, 404, "not_found")
        return ctx.render("dossier.html", dossier=dossier,
                          documents=store.documents_of_dossier(ctx.conn, dossier["code"]))

    # --- search -------------------------------------------------------------------
    def run_search(ctx: Ctx) -> dict:
        params = ctx.request.query_params
        return finder.search(ctx.conn, params.get("q", ""), quarter=params.get("quarter") or None,
                             procedure=params.get("procedure") or None, status=params.get("status") or None,
                             cutoff_day=app.config["periods"]["cutoff_day"])

    @endpoint(app)
    def search_page(ctx: Ctx) -> Response:
        found = run_search(ctx)
        return ctx.render("search.html", found=found, params=ctx.request.query_params,
                          procedures=store.procedures(ctx.conn), quarters=recent_quarters())

    @endpoint(app)
    def api_search(ctx: Ctx) -> Response:
        found = run_search(ctx)
        return JSONResponse({"query": found["query"], "mode": found["mode"], "results": [
            {"id": r["id"], "source": Path(r["source"]).name, "dossier": r["dossier_code"], "kind": r["kind"],
             "status": r["status"], "link_status": r["link_status"], "applicant": r["applicant"],
             "snippet": "".join(text for text, _ in r["snippet"]),
             "highlights": [text for text, marked in r["snippet"] if marked]} for r in found["results"]]})

    def recent_quarters(count: int = 12) -> list[str]:
        """This quarter and the ones before it, newest first: suggestions for the search filter."""
        cutoff = app.config["periods"]["cutoff_day"]
        current = period_rules.containing(date.today(), "quarter", cutoff)
        return [p.label for p in reversed(period_rules.preceding(current, count, cutoff))]

    # --- coverage -------------------------------------------------------------------
    def coverage_options(ctx: Ctx) -> dict:
        """The command's options from the query: year=, quarter=, month=, from=, to=, by=, or period=LABEL."""
        params = ctx.request.query_params
        options = {key: params.get(key) or None for key in ("quarter", "month", "year")}
        options["from_day"], options["to_day"] = params.get("from") or None, params.get("to") or None
        label = (params.get("period") or "").strip()
        if label and not any(options.values()):
            kind = "quarter" if "Q" in label.upper() else "month" if "-" in label else "year"
            options[kind] = label.upper() if kind == "quarter" else label
        by = params.get("by") or None
        options["by"] = by if by in reports.BREAKDOWN_KEYS else None
        return options

    @endpoint(app)
    def api_coverage(ctx: Ctx) -> Response:
        options = coverage_options(ctx)
        lang = ctx.request.query_params.get("lang", "vi")
        _, report = reports.for_options(ctx.conn, app.config, today=date.today(), fmt="json", **options)
        return Response(reports.render(report, "json", lang if lang in LANGS else "vi", options["by"]),
                        media_type="application/json")

    @endpoint(app)
    def coverage_page(ctx: Ctx) -> Response:
        options = coverage_options(ctx)
        chosen, report = reports.for_options(ctx.conn, app.config, today=date.today(), fmt="html", **options)
        by = options["by"] or "procedure"
        query = ctx.request.url.query
        return ctx.render("coverage.html", report=report, main=report["periods"][-1], by=by,
                          label=chosen[-1].label, query=query,
                          chart=reports.chart_svg(report["history"], report["pass_mark"], ctx.lang)
                          if report.get("history") else "",
                          summary_columns=reports.SUMMARY_COLUMNS, by_columns=reports.breakdown_columns(by),
                          missing_columns=reports.MISSING_COLUMNS)

    @endpoint(app)
    def coverage_download(ctx: Ctx) -> Response:
        fmt = ctx.request.path_params["fmt"]
        options = coverage_options(ctx)
        chosen, report = reports.for_options(ctx.conn, app.config, today=date.today(), fmt=fmt, **options)
        stem = reports.report_stem(chosen[-1].label, ctx.lang)
        if fmt == "xlsx":
            data, media = reports.to_xlsx(report, ctx.lang), \
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        else:
            data, media = reports.to_html(report, ctx.lang).encode("utf-8"), "text/html; charset=utf-8"
        return Response(data, media_type=media, headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(stem)}.{fmt}"})

    # --- registry (admin) -------------------------------------------------------------
    @endpoint(app, roles=ADMINS)
    def registry_page(ctx: Ctx) -> Response:
        return ctx.render("registry.html", report=None)

    @endpoint(app, roles=ADMINS)
    def registry_upload(ctx: Ctx) -> Response:
        upload = ctx.form.get("file")
        if upload is None or isinstance(upload, str) or not upload.filename:
            raise decisions.DecisionError("Chưa chọn tệp.", "No file chosen.")
        name = Path(upload.filename.replace("\\", "/")).name
        suffix = Path(name).suffix.lower()
        if suffix not in (".csv", ".xlsx", ".txt"):
            raise decisions.DecisionError("Chỉ nhận tệp CSV hoặc XLSX.", "Only CSV or XLSX files are accepted.")
        uploads = layout.uploads_folder(app.paths["work"])
        uploads.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=uploads, suffix=suffix, delete=False) as handle:
            upload.file.seek(0)
            handle.write(upload.file.read())
            saved = Path(handle.name)
        try:
            report = decisions.import_registry(ctx.conn, saved, app.config, app.paths["archive"],
                                               ctx.user["name"], shown_name=name)
        finally:
            saved.unlink(missing_ok=True)
        if _is_api(ctx.request):
            return JSONResponse(report)
        return ctx.render("registry.html", report=report)

    # --- users and audit (admin) -------------------------------------------------------
    @endpoint(app, roles=ADMINS)
    def users_page(ctx: Ctx) -> Response:
        return ctx.render("users.html", users=store.list_users(ctx.conn), roles=accounts.ROLES)

    @endpoint(app, roles=ADMINS)
    def users_add(ctx: Ctx) -> Response:
        accounts.add(ctx.conn, str(ctx.form.get("name") or ""), str(ctx.form.get("role") or ""),
                     str(ctx.form.get("password") or ""), ctx.user["name"])
        return RedirectResponse("/users", status_code=303)

    @endpoint(app, roles=ADMINS)
    def users_disable(ctx: Ctx) -> Response:
        accounts.disable(ctx.conn, str(ctx.form.get("name") or ""), ctx.user["name"])
        return RedirectResponse("/users", status_code=303)

    @endpoint(app, roles=ADMINS)
    def audit_page(ctx: Ctx) -> Response:
        return ctx.render("audit.html", entries=store.audit_entries(ctx.conn))

    routes = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/lang/{lang}", set_lang),
        Route("/", home),
        Route("/review", review),
        Route("/documents/{document_id:int}", document_page),
        Route("/documents/{document_id:int}/file.pdf", document_pdf),
        Route("/documents/{document_id:int}/pages/{page:int}.png", document_thumb),
        Route("/documents/{document_id:int}/link", link_document, methods=["POST"]),
        Route("/documents/{document_id:int}/unlink", unlink_document, methods=["POST"]),
        Route("/dossiers/{code}", dossier_page),
        Route("/search", search_page),
        Route("/coverage", coverage_page),
        Route("/coverage/report.{fmt:str}", coverage_download),
        Route("/registry", registry_page, methods=["GET"]),
        Route("/registry", registry_upload, methods=["POST"]),
        Route("/users", users_page, methods=["GET"]),
        Route("/users", users_add, methods=["POST"]),
        Route("/users/disable", users_disable, methods=["POST"]),
        Route("/audit", audit_page),
        Route("/api/session", api_session),
        Route("/api/review", api_review),
        Route("/api/search", api_search),
        Route("/api/coverage", api_coverage),
        Route("/api/documents/{document_id:int}/link", link_document, methods=["POST"]),
        Route("/api/documents/{document_id:int}/unlink", unlink_document, methods=["POST"]),
        Route("/api/registry", registry_upload, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    return Starlette(routes=routes, middleware=[Middleware(HeadersAndLog)])


class HeadersAndLog:
    """Security headers on every response (kept where a route set its own); one log line per
    request with the path only: the query string is never logged, a search may carry a CCCD."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.monotonic()
        status = {}

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
                         if name.lower().encode() not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, receive, send_with_headers)
        log.info("%s %s %s %.0f ms", scope["method"], mask_ids(scope["path"]), status.get("code"),
                 (time.monotonic() - started) * 1000)
