"""The web page's rules against a real `digitize serve`: sessions, CSRF, roles, throttling,
paths, markup shown as text, masked CCCDs, and the API's figures equal to the command's."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from digitize import store
from tests.conftest import DIGITIZE, PROJECT_ROOT, WEB_USERS, run_digitize
from tests.web_client import Client

OFFICER, SUPERVISOR, ADMIN = "Nguyễn Văn An", "giám sát", "admin"
FULL_CCCD = "070166805643"        # Nguyễn Thu Mai, dossier 000.00.06.H56-241105-0015 (samples/registry.csv)
MASKED_CCCD = "070******643"
NASTY = ('<script>alert("x")</script> "Trần" \'Bình\' [bold red]đỏ[/bold red] **đậm** '
         '<img src=x onerror=alert(1)>')
NASTY_CODE = "000.00.06.H56-230105-0001"


def client(base: str, name: str | None = None) -> Client:
    http = Client(base)
    if name:
        assert http.login(name, WEB_USERS[name][1]).status == 303
    return http


def add_user(home: Path, name: str, role: str, password: str) -> None:
    done = subprocess.run([*DIGITIZE, "user", "add", name, "--role", role, "--password-stdin"], input=password,
                          capture_output=True, text=True, cwd=PROJECT_ROOT, env={**os.environ, "DIGITIZE_HOME": str(home)})
    assert done.returncode == 0, done.stderr


def catalogue(home: Path):
    return store.connect(home / "catalogue.sqlite")


def unlinked_document(home: Path) -> dict:
    """The sample with no dossier code (notice-skew-3-border.png): processed, linked to nothing."""
    return next(d for d in store.list_documents(catalogue(home), "done") if d["source"].endswith("notice-skew-3-border.png"))


PAGES = ["/", "/review", "/search?q=dang+ky", "/coverage?year=2024", "/documents/1", "/documents/1/file.pdf",
         "/documents/1/pages/1.png", "/dossiers/000.00.06.H56-241003-0012", "/registry", "/users", "/audit",
         "/coverage/report.xlsx"]
APIS = ["/api/review", "/api/search?q=dang", "/api/coverage?year=2024", "/api/session"]


@pytest.mark.parametrize("cookie", [None, "forged-session-value"])
def test_no_page_pdf_or_api_without_a_session(web_server, cookie):
    http = Client(web_server, cookie)
    for path in PAGES:
        answer = http.get(path)
        assert answer.status == 303 and answer.headers["location"].startswith("/login?next="), path
        assert b"%PDF" not in answer.body and b"PNG" not in answer.body
    for path in APIS:
        assert http.get(path).status == 401, path
    assert http.post_json("/api/documents/1/link", {"dossier": "000.00.06.H56-241003-0012"}).status == 401
    assert http.post_form("/documents/1/unlink", {}).status == 303
    assert http.get("/healthz").status == 200 and http.get("/login").status == 200


def test_session_cookie_is_httponly_strict_and_expires_and_logout_ends_it(web_server):
    http = Client(web_server)
    answer = http.login(ADMIN, WEB_USERS[ADMIN][1])
    cookie = next(c for c in answer.set_cookies if c.startswith("digitize_session="))
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert "httponly" in flags and flags["samesite"].lower() == "samesite=strict"
    assert flags["max-age"] == "Max-Age=36000" and "path" in flags
    assert http.get("/api/session").status == 200
    old_session = http.cookies["digitize_session"]
    assert http.post_form("/logout", {"csrf": http.csrf()}).status == 303
    assert Client(web_server, old_session).get("/api/session").status == 401  # ended on the server too


def test_state_changes_need_the_csrf_token(web_server, web_home):
    http = client(web_server, OFFICER)
    document = unlinked_document(web_home)
    path = f"/documents/{document['id']}/link"
    code = "000.00.06.H56-241112-0002"
    assert http.post_form(path, {"dossier": code}).status == 403
    assert http.post_form(path, {"dossier": code, "csrf": "not-the-token"}).status == 403
    assert http.post_json(f"/api{path}", {"dossier": code}).status == 403
    assert http.post_json(f"/api{path}", {"dossier": code}, {"X-CSRF-Token": "x" * 43}).status == 403
    assert http.post_form("/logout", {}).status == 403
    # The login form has its own token too (no session yet): a post from elsewhere is refused.
    forged = Client(web_server).post_form("/login", {"name": ADMIN, "password": WEB_USERS[ADMIN][1]})
    assert forged.status == 403 and not any(c.startswith("digitize_session=") for c in forged.set_cookies)
    assert store.get_document(catalogue(web_home), document["id"])["link_status"] == document["link_status"]


def test_api_link_takes_the_commands_path(web_server, web_home):
    """POST /api/documents/{id}/link: same decision, same filing, an audit entry with who and when."""
    http = client(web_server, OFFICER)
    token = http.csrf()
    document = unlinked_document(web_home)
    code = "000.00.06.H56-241112-0002"
    bad = http.post_json(f"/api/documents/{document['id']}/link", {"dossier": "000.00.06.H56-991231-9999"},
                         {"X-CSRF-Token": token})
    assert bad.status == 400 and "registry" in bad.json()["error"]["en"]
    answer = http.post_json(f"/api/documents/{document['id']}/link", {"dossier": code}, {"X-CSRF-Token": token})
    assert answer.status == 200, answer.text
    assert answer.json() == {"document": document["id"], "dossier": code, "link_status": "linked",
                             "link_method": "manual"}
    linked = store.get_document(catalogue(web_home), document["id"])
    assert Path(linked["output"]).parent == web_home / "archive" / "2024" / "Q4" / code
    assert Path(linked["output"]).is_file() and not Path(document["output"]).exists()
    entry = store.audit_entries(catalogue(web_home), document_id=document["id"])[0]
    assert (entry["actor"], entry["action"], entry["dossier"]) == (OFFICER, "link", code)
    # Found by its new dossier code at once (the search index follows set_link).
    found = http.get("/api/search?q=" + code).json()
    assert found["mode"] == "dossier" and document["id"] in [r["id"] for r in found["results"]]
    unlinked = http.post_json(f"/api/documents/{document['id']}/unlink", {}, {"X-CSRF-Token": token})
    assert unlinked.status == 200 and unlinked.json()["link_status"] == "none"
    assert store.audit_entries(catalogue(web_home), document_id=document["id"])[0]["action"] == "unlink"


def test_roles(web_server, web_home):
    officer = client(web_server, OFFICER)
    token = officer.csrf()
    registry = (PROJECT_ROOT / "samples" / "registry.csv").read_bytes()
    assert officer.get("/registry").status == 403
    assert officer.post_file("/registry", {"csrf": token}, "registry.csv", registry).status == 403
    assert officer.get("/users").status == 403 and officer.get("/audit").status == 403
    assert officer.post_form("/users", {"csrf": token, "name": "intruder", "role": "admin",
                                        "password": "intruder-pass"}).status == 403
    assert officer.post_form("/users/disable", {"csrf": token, "name": ADMIN}).status == 403
    assert store.get_user(catalogue(web_home), "intruder") is None

    supervisor = client(web_server, SUPERVISOR)
    token = supervisor.csrf()
    for path in ("/", "/review", "/coverage?year=2024", "/search?q=dang"):
        assert supervisor.get(path).status == 200, path
    assert "candidate-link" not in supervisor.get("/review").text
    document = unlinked_document(web_home)
    assert supervisor.post_json(f"/api/documents/{document['id']}/link", {"dossier": "000.00.06.H56-241112-0002"},
                                {"X-CSRF-Token": token}).status == 403
    assert supervisor.post_form(f"/documents/{document['id']}/unlink", {"csrf": token}).status == 403

    admin = client(web_server, ADMIN)
    answer = admin.post_file("/registry", {"csrf": admin.csrf()}, "registry.csv", registry)
    assert answer.status == 200 and 'id="unchanged">12<' in answer.text


def test_registry_upload_reports_every_row_as_the_command_does(web_server, web_home, tmp_path):
    export = tmp_path / "export.csv"
    export.write_text("Mã hồ sơ,Chủ hồ sơ,Ngày tiếp nhận,Ngày hẹn trả\n"
                      "000.00.06.H56-240105-0007,Lê Văn Tám,05/01/2024,08/01/2024\n"
                      "not-a-code,Ai Đó,05/01/2024,08/01/2024\n"
                      "000.00.06.H56-240106-0001,Trần Văn Chín,32/01/2024,08/01/2024\n", encoding="utf-8")
    admin = client(web_server, ADMIN)
    token = admin.csrf()
    page = admin.post_file("/registry", {"csrf": token}, "export.csv", export.read_bytes())
    assert page.status == 200
    rejected = page.text.split('id="rejected-rows"')[1]
    assert "<td class=\"n\">3</td>" in rejected and "<td class=\"n\">4</td>" in rejected
    web = admin.post_file("/api/registry", {"csrf": token}, "export.csv", export.read_bytes()).json()
    done = run_digitize(["registry", "import", str(export), "--json"], web_home)
    command = json.loads(done.stdout)
    assert [r["line"] for r in web["rejected"]] == [3, 4]
    for key in ("rejected", "duplicates", "notes", "encoding", "unchanged", "updated"):
        assert web[key] == command[key], key
    assert web["file"] == "export.csv"


def test_login_is_throttled_after_repeated_bad_passwords(web_server, web_home):
    add_user(web_home, "thử-khóa", "officer", "right-password-1")
    http = Client(web_server)
    for _ in range(5):
        assert http.login("thử-khóa", "wrong-password").status in (401, 429)
    refused = http.login("thử-khóa", "right-password-1")
    assert refused.status == 429 and not any(c.startswith("digitize_session=") for c in refused.set_cookies)
    assert "Đăng nhập sai quá nhiều lần" in refused.text
    # The lock is on that name: others from the same address still log in.
    assert Client(web_server).login(ADMIN, WEB_USERS[ADMIN][1]).status == 303


def test_admin_adds_and_disables_a_user_on_the_page_and_the_session_ends(web_server):
    admin = client(web_server, ADMIN)
    token = admin.csrf()
    assert admin.post_form("/users", {"csrf": token, "name": "tạm thời", "role": "officer",
                                      "password": "short"}).status == 400  # the command's rules
    assert admin.post_form("/users", {"csrf": token, "name": "tạm thời", "role": "officer",
                                      "password": "temporary-pass-1"}).status == 303
    temporary = Client(web_server)
    assert temporary.login("tạm thời", "temporary-pass-1").status == 303
    assert temporary.get("/api/session").json()["role"] == "officer"
    assert admin.post_form("/users/disable", {"csrf": token, "name": "tạm thời"}).status == 303
    assert temporary.get("/api/session").status == 401
    assert temporary.login("tạm thời", "temporary-pass-1").status == 401


def test_urls_cannot_reach_outside_the_archive(web_server, web_home, tmp_path):
    http = client(web_server, ADMIN)
    for path in ("/documents/../../../../etc/passwd", "/documents/1/file.pdf/../../../../../etc/passwd",
                 "/documents/%2e%2e%2f%2e%2e%2fetc%2fpasswd/file.pdf", "/static/../../../../etc/passwd",
                 "/static/%2e%2e/%2e%2e/store.py", "/static/..%2f..%2fstore.py", "/static/..%5c..%5cstore.py",
                 "/dossiers/..%2F..%2Fetc%2Fpasswd", "/documents/-1/file.pdf", "/documents/1e3/file.pdf"):
        answer = http.get(path)
        assert answer.status == 404, path
        assert b"root:" not in answer.body and b"def connect" not in answer.body, path
    # Catalogue rows pointing outside the archive (a copy, a link out of it) are never served.
    conn = catalogue(web_home)
    some_pdf = Path(store.list_documents(conn, "done")[0]["output"])
    outside = tmp_path / "outside.pdf"
    shutil.copy(some_pdf, outside)
    sneaky_link = web_home / "archive" / "sneaky.pdf"
    sneaky_link.symlink_to(outside)
    planted = [store.save_document(conn, {"sha256": sha, "source": str(outside), "output": str(output),
                                          "status": "done", "page_count": 1})
               for sha, output in (("f" * 64, outside), ("e" * 64, sneaky_link))]
    for document_id in planted:
        assert http.get(f"/documents/{document_id}/file.pdf").status == 404
        assert http.get(f"/documents/{document_id}/pages/1.png").status == 404
    answer = http.get(f"/documents/{store.list_documents(conn, 'done')[0]['id']}/file.pdf")
    assert answer.status == 200 and answer.headers["content-type"] == "application/pdf"
    assert answer.body.startswith(b"%PDF") and answer.headers["cache-control"] == "no-store"


def test_names_with_markup_render_as_text(web_server, web_home, chromium, tmp_path):
    """Registry and user names with HTML, quotes and Rich/Markdown markup are shown as typed, never run."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["Mã hồ sơ", "Mã TTHC", "Tên thủ tục", "Chủ hồ sơ", "Số CCCD", "Ngày tiếp nhận",
                     "Ngày hẹn trả", "Trạng thái", "Cán bộ tiếp nhận"])
    writer.writerow([NASTY_CODE, "1.001193", NASTY, NASTY, "", "05/01/2023", "08/01/2023", "2", NASTY])
    export = tmp_path / "nasty.csv"
    export.write_text(buffer.getvalue(), encoding="utf-8")
    add_user(web_home, NASTY[:60], "officer", "nasty-password-1")

    context = chromium.new_context(viewport={"width": 1366, "height": 768}, base_url=web_server)
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto("/login")
    page.fill("input[name=name]", ADMIN)
    page.fill("input[name=password]", WEB_USERS[ADMIN][1])
    page.click("form.login button[type=submit]")
    page.wait_for_url(web_server + "/")
    page.goto("/registry")
    page.set_input_files("input[type=file]", str(export))
    page.click("form.search-form button[type=submit]")
    page.wait_for_selector("#import-report")
    assert page.locator("#added").inner_text() == "1"
    checks = [(f"/dossiers/{NASTY_CODE}", "main table"), ("/coverage?period=2023-Q1&by=officer", "#by-officer"),
              ("/coverage?period=2023-Q1", "#missing"), ("/users", "#users"), ("/audit", "#audit")]
    for path, where in checks:
        page.goto(path)
        text = page.locator(where).first.inner_text()
        assert (NASTY[:60] if path in ("/users", "/audit") else NASTY) in text, path
        assert page.locator("main script, main img[src=x]").count() == 0, path
        assert page.evaluate("document.scripts.length") == 2, path  # htmx.min.js and app.js only
    assert dialogs == []
    context.close()


def test_cccd_is_masked_everywhere_but_on_the_documents_page(web_server, web_home):
    http = client(web_server, SUPERVISOR)
    found = http.get(f"/api/search?q={FULL_CCCD}").json()
    assert found["mode"] == "cccd" and found["results"]
    results = http.get(f"/search?q={FULL_CCCD}").text.split('<ol class="results">')[1]
    assert MASKED_CCCD in results and FULL_CCCD not in results  # the number is only where it was typed
    for path in ("/api/review", "/review", "/api/search?q=nguyen+thu+mai", "/search?q=nguyen+thu+mai",
                 "/dossiers/000.00.06.H56-241105-0015", "/coverage?period=2024-Q4", "/api/coverage?year=2024"):
        assert FULL_CCCD not in http.get(path).text, path
    document_id = found["results"][0]["id"]
    assert FULL_CCCD in http.get(f"/documents/{document_id}").text
    log = (web_home / "serve.log").read_text(encoding="utf-8")
    assert FULL_CCCD not in log and "/api/search" in log


def test_api_search_folds_accents_and_dd(web_server):
    http = client(web_server, SUPERVISOR)
    found = http.get("/api/search?q=dang+ky").json()
    assert found["mode"] == "text" and found["results"]
    for result in found["results"]:
        assert {h.lower() for h in result["highlights"]} <= {"đăng", "ký"}, result["highlights"]
    review = http.get("/api/review").json()
    assert isinstance(review, list)
    # Filters: quarter (the dossier's received day), procedure, link status.
    filtered = http.get("/api/search?q=dang+ky&quarter=2024-Q4&procedure=1.000894&status=linked").json()["results"]
    assert filtered and all(r["link_status"] == "linked" and r["dossier"] for r in filtered)
    assert len(filtered) < len(found["results"])
    assert http.get("/api/search?q=dang+ky&quarter=2023-Q1").json()["results"] == []
    by_filter_only = http.get("/api/search?q=&status=linked").json()
    assert by_filter_only["mode"] == "filter" and all(r["link_status"] == "linked" for r in by_filter_only["results"])
    odd = http.get("/api/search?q=%22zzqx%22+NEAR%28+OR+*")  # FTS syntax is quoted away, never an error
    assert odd.status == 200 and odd.json()["results"] == []


@pytest.mark.parametrize("query, command", [
    ("year=2024", ["--year", "2024"]),
    ("quarter=2024-Q4&by=procedure", ["--quarter", "2024-Q4", "--by", "procedure"]),
    ("month=2024-11&by=officer&lang=en", ["--month", "2024-11", "--by", "officer", "--lang", "en"]),
    ("from=2024-10-01&to=2024-11-15", ["--from", "2024-10-01", "--to", "2024-11-15"]),
])
def test_api_coverage_equals_the_command(web_server, web_home, query, command):
    http = client(web_server, SUPERVISOR)
    answer = http.get(f"/api/coverage?{query}")
    done = run_digitize(["coverage", *command, "--format", "json"], web_home)
    assert done.returncode == 0, done.stderr
    assert answer.status == 200 and answer.headers["content-type"] == "application/json"
    assert answer.text == done.stdout
    assert json.loads(answer.text)["periods"]


def test_a_busy_catalogue_makes_a_request_wait_not_fail(web_server, web_home):
    """While another process (the watcher, here this test) holds the write lock, pages still read
    (WAL) and a link waits for the lock instead of failing."""
    http = client(web_server, OFFICER)
    token = http.csrf()
    document = unlinked_document(web_home)
    writer = sqlite3.connect(web_home / "catalogue.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    answers = {}

    def link():
        started = time.monotonic()
        answers["link"] = http.post_json(f"/api/documents/{document['id']}/link",
                                         {"dossier": "000.00.06.H56-241112-0002"}, {"X-CSRF-Token": token})
        answers["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=link)
    thread.start()
    try:
        assert http.get("/review").status == 200  # a reader is not blocked by the writer
        time.sleep(2.0)
        assert "link" not in answers
    finally:
        writer.execute("COMMIT")
        writer.close()
    thread.join(timeout=60)
    assert answers["link"].status == 200 and answers["seconds"] >= 2.0
    assert http.post_json(f"/api/documents/{document['id']}/unlink", {}, {"X-CSRF-Token": token}).status == 200


def test_home_shows_the_watcher_and_quarantined_files_masked(web_server, web_home):
    conn = catalogue(web_home)
    store.note_intake(conn, "claim-home-1", "quarantined", f"/inbox/An/CCCD {FULL_CCCD}.pdf",
                      "/quarantine/An/x.pdf", officer="Nguyễn Văn An",
                      error="Tệp PDF bị hỏng / The PDF is damaged")
    (web_home / "watch.heartbeat").write_text(json.dumps(
        {"pid": os.getpid(), "epoch": time.time(), "time": "now", "state": "idle"}), encoding="utf-8")
    try:
        page = client(web_server, OFFICER).get("/").text
    finally:
        (web_home / "watch.heartbeat").unlink()
    assert "đang chạy" in page.split('id="heartbeat"')[1].split("</p>")[0]
    quarantined = page.split('id="quarantined"')[1]
    assert f"CCCD {MASKED_CCCD}.pdf" in quarantined and "The PDF is damaged" in quarantined
    assert FULL_CCCD not in page
