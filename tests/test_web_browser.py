"""The web page in a real browser (Playwright + Debian's Chromium) against a real `digitize serve`.

An officer logs in, links the document waiting in the review queue with the
keyboard, finds it by an unaccented search, opens its PDF and reads the
quarter's rate, which must be the command's. Screenshots of every page at
1366x768 are kept in the test's folder (DIGITIZE_SCREENSHOTS overrides it).
"""
from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pikepdf
import pytest

from digitize import reports, store
from digitize.coverage import rate as coverage_rate
from tests.conftest import WEB_USERS, run_digitize

OFFICER = "Nguyễn Văn An"
ADMIN = "admin"
REVIEWED_DOSSIER = "000.00.06.H56-241105-0015"  # scan_20241106_0001.jpg waits for review with this candidate
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("DIGITIZE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def login(browser, base: str, name: str):
    context = browser.new_context(viewport=VIEWPORT, base_url=base)
    page = context.new_page()
    page.goto("/")
    assert page.url.endswith("/login?next=%2F")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", WEB_USERS[name][1])
    page.click("form.login button[type=submit]")
    page.wait_for_url(base + "/")
    return context, page


def focus_with_j(page, document_id: int) -> None:
    """Press J (next document) until the review item of `document_id` has the focus."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for _ in range(30):
        page.keyboard.press("j")
        if page.evaluate("document.activeElement.dataset.id") == str(document_id):
            return
    raise AssertionError(f"J never reached document {document_id}")


def snap(page, shots: Path, name: str) -> None:
    """A screenshot of the viewport (what the officer sees first); the page must not scroll sideways."""
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(shots / f"{name}.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"], name


def test_officer_links_finds_opens_and_reads_the_rate(web_server, web_home, chromium, shots):
    context = chromium.new_context(viewport=VIEWPORT, base_url=web_server)
    page = context.new_page()
    alerts, console_errors = [], []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    # A CSP violation (an inline script or style slipping in) or a missing file shows here.
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.goto("/review")
    assert "/login" in page.url
    snap(page, shots, "01-login")
    page.fill("input[name=name]", OFFICER)
    page.fill("input[name=password]", WEB_USERS[OFFICER][1])
    page.click("form.login button[type=submit]")
    page.wait_for_url(web_server + "/review")

    # Review queue: one document waits, with its thumbnail, fields and ranked candidates.
    item = page.locator("article.review-item", has_text=REVIEWED_DOSSIER).first
    document_id = int(item.get_attribute("data-id"))
    assert REVIEWED_DOSSIER in item.inner_text()
    thumb = item.locator(".thumbs img").first
    thumb.wait_for()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("img => img.naturalWidth", thumb.element_handle()) > 100
    assert "070******643" in item.inner_text() and "070166805643" not in page.content()
    snap(page, shots, "02-review")

    # A code not in the registry is refused, in words, and nothing changes.
    focus_with_j(page, document_id)
    page.keyboard.press("c")
    page.keyboard.type("000.00.06.H56-991231-9999")
    page.keyboard.press("Enter")
    page.locator("#flash [role=alert]").wait_for()
    assert "chưa có trong sổ" in page.inner_text("#flash")
    snap(page, shots, "02b-review-refused")
    assert store.get_document(store.connect(web_home / "catalogue.sqlite"), document_id)["link_status"] == "review"

    # Keyboard: J moves to the document, 1 links it to its first candidate (htmx, no reload).
    focus_with_j(page, document_id)
    page.keyboard.press("1")
    status = page.locator(f"#doc-{document_id} [role=status]")
    status.wait_for()
    assert REVIEWED_DOSSIER in status.inner_text()
    assert page.inner_text("#flash") == ""  # the earlier refusal is cleared
    snap(page, shots, "03-review-linked")
    conn = store.connect(web_home / "catalogue.sqlite")
    document = store.get_document(conn, document_id)
    assert (document["link_status"], document["link_method"], document["dossier_code"]) == \
        ("linked", "manual", REVIEWED_DOSSIER)
    assert f"/2024/Q4/{REVIEWED_DOSSIER}/" in document["output"] and Path(document["output"]).is_file()
    entry = store.audit_entries(conn, document_id=document_id)[0]
    assert (entry["actor"], entry["action"], entry["dossier"]) == (OFFICER, "link", REVIEWED_DOSSIER)

    # Search as people type: no accents, no capitals.
    page.goto("/search")
    page.fill("#q", "nguyen thu mai")
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r".*/search\?q=nguyen\+thu\+mai.*"))
    results = page.locator("li.result")
    assert results.count() >= 1
    first = results.first
    assert f"#{document_id}" in first.inner_text() and REVIEWED_DOSSIER in first.inner_text()
    snap(page, shots, "04-search")
    page.goto("/search?q=dang+ky")
    marks = page.locator("li.result mark").all_inner_texts()
    assert marks and all(re.fullmatch(r"(?i)đăng|ký", text) for text in marks), marks
    assert {"Đăng", "ký"} <= set(marks) or {"ĐĂNG", "KÝ"} <= set(marks)

    # The document: its page embeds the PDF; the PDF itself is served to the session as a PDF.
    page.goto(f"/documents/{document_id}")
    assert "070166805643" in page.inner_text("main")  # the document's own page shows the full CCCD
    snap(page, shots, "05-document")
    answer = context.request.get(f"/documents/{document_id}/file.pdf")
    assert answer.status == 200 and answer.headers["content-type"] == "application/pdf"
    with pikepdf.open(io.BytesIO(answer.body())) as pdf:
        assert len(pdf.pages) == document["page_count"]

    # Coverage of the quarter: the same figures as the command.
    page.goto("/coverage?period=2024-Q4")
    rate = page.locator("#card-rate .value").inner_text()
    counts = page.locator("#card-rate .count").inner_text()
    done = run_digitize(["coverage", "--quarter", "2024-Q4", "--format", "json"], web_home)
    row = json.loads(done.stdout)["periods"][-1]
    assert rate == reports.percent(coverage_rate(row["digitised"], row["received"]), "vi")
    assert counts.startswith(f"{row['digitised']}/{row['received']}")
    assert page.locator("#rate-chart").is_visible()
    missing = page.locator("#missing a").all_inner_texts()
    assert REVIEWED_DOSSIER not in missing
    snap(page, shots, "06-coverage")
    xlsx = context.request.get("/coverage/report.xlsx?period=2024-Q4")
    assert xlsx.status == 200 and xlsx.body()[:2] == b"PK"

    # English on request; the home page with the watcher's state.
    page.goto("/")
    page.click("#lang-switch")
    page.wait_for_load_state()
    assert page.locator("header nav").inner_text().split()[:1] == ["Home"]
    assert page.locator("#count-review").inner_text() == str(len(store.documents_in_review(conn)))
    snap(page, shots, "07-home-en")
    assert alerts == []
    # The refused code above is the one error the console may show (htmx logs a 400 response).
    assert [e for e in console_errors if "400" not in e] == [], console_errors
    context.close()


def test_admin_pages_render_at_office_screen_size(web_server, chromium, shots):
    context, page = login(chromium, web_server, ADMIN)
    snap(page, shots, "08-home")
    for path, name in (("/registry", "09-registry"), ("/users", "10-users"), ("/audit", "11-audit")):
        page.goto(path)
        assert page.url.endswith(path)
        snap(page, shots, name)
    assert OFFICER in page.locator("#audit").inner_text()
    page.goto("/registry")
    page.set_input_files("input[type=file]", str(Path(__file__).resolve().parent.parent / "samples" / "registry.csv"))
    page.click("form.search-form button[type=submit]")
    page.wait_for_selector("#import-report")
    assert page.locator("#unchanged").inner_text() == "12"
    snap(page, shots, "12-registry-imported")
    context.close()
