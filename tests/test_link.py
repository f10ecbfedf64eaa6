"""Linking rules (each one, including those that must refuse), feed splitting, filing, review CLI."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pdf2image import convert_from_path

from digitize import store
from digitize.barcodes import decode_barcodes
from tools import REPO_ROOT as PROJECT_ROOT
from digitize.extract import extract_page, merge_fields
from digitize.models import LinkDecision
from digitize.link import analyse_document, decide_link, relink, split_parts

A = "000.00.06.H56-231027-0361"
B = "000.00.06.H56-231027-0381"        # one OCR-plausible digit away from A
C = "000.00.06.H56-231028-0002"
REGISTRY = [
    {"code": A, "procedure_code": "1.001193", "procedure_name": "Đăng ký khai sinh",
     "applicant": "Nguyễn Thị Minh Khai", "cccd": "001195012345", "received_date": "2023-10-27",
     "due_date": "2023-10-30", "finished_date": None},
    {"code": B, "procedure_code": "1.000894", "procedure_name": "Đăng ký kết hôn",
     "applicant": "Trần Văn Bình", "cccd": "001090000001", "received_date": "2023-10-27",
     "due_date": "2023-11-01", "finished_date": None},
    {"code": C, "procedure_code": "1.001193", "procedure_name": "Đăng ký khai sinh",
     "applicant": "Lê Thị Hoa", "cccd": None, "received_date": "2023-10-28",
     "due_date": "2023-10-31", "finished_date": None},
]


def fields_of(text: str = "", barcodes: list[dict] | None = None, file_name: str | None = None) -> dict:
    return merge_fields([extract_page(text, barcodes or [])], file_name)


def test_barcode_code_in_the_registry_links():
    link = decide_link(fields_of("", [{"text": f"{A}|1.001193|x", "kind": "qr"}]), REGISTRY)
    assert (link["status"], link["method"], link["dossier"], link["confidence"]) == ("linked", "barcode", A, 1.0)


def test_exact_text_code_links_when_nothing_contradicts():
    link = decide_link(fields_of(f"Mã hồ sơ: {A}\nChủ hồ sơ: Nguyễn Thị Minh Khai"), REGISTRY)
    assert (link["status"], link["method"], link["dossier"]) == ("linked", "text", A)
    assert any("applicant matches" in e for e in link["candidates"][0]["evidence"])


def test_exact_text_code_with_another_applicant_goes_to_review():
    link = decide_link(fields_of(f"Mã hồ sơ: {A}\nChủ hồ sơ: Phạm Quốc Dũng"), REGISTRY)
    assert (link["status"], link["dossier"]) == ("review", None)
    assert any("applicant differs" in e for e in link["candidates"][0]["evidence"])


def test_accents_dropped_by_ocr_do_not_contradict_the_applicant():
    link = decide_link(fields_of(f"Mã hồ sơ: {A}\nChủ hồ sơ: Nguyen Thi Minh Khai"), REGISTRY)
    assert link["status"] == "linked"


# ---------------------------------------------------------------- evidence with weights

SIGNED = ("NGƯỜI NỘP HỒ SƠ NGƯỜI TIẾP NHẬN HỒ SƠ\n(Ký, ghi rõ họ tên) (Ký, ghi rõ họ tên)\n"
          "Nguyễn Thị Minh Khai Hoàng Thị Lan")


def test_code_and_cccd_agreeing_link_whatever_a_weak_field_says():
    # The name OCR gave is nobody's, the procedure printed is another: weak fields, no veto.
    text = f"Mã hồ sơ: {A}\nChủ hồ sơ: Hoàng Thị Lan\nSố CCCD: 001195012345\nMã TTHC: 1.000894"
    link = decide_link(fields_of(text), REGISTRY)
    assert (link["status"], link["method"], link["dossier"]) == ("linked", "text", A)
    evidence = link["candidates"][0]["evidence"]
    assert any("citizen ID matches" in e for e in evidence) and any("applicant differs" in e for e in evidence)


def test_a_signature_block_no_longer_vetoes_a_receipt():
    text = f"Mã hồ sơ: {A}\nNgười nộp: Bà Nguyễn Thị Minh Khai\nSố CCCD: 001195012345\n{SIGNED}"
    fields = fields_of(text)
    assert fields["applicant"] == "Nguyễn Thị Minh Khai"
    assert decide_link(fields, REGISTRY)["status"] == "linked"


def test_strong_evidence_that_disagrees_goes_to_review():
    # the code says A, the CCCD is B's applicant's (the person belongs to another dossier)
    for text, barcodes in ((f"Mã hồ sơ: {A}\nSố CCCD: 001090000001", []),
                           ("", [{"text": f"MaHoSo={A};SoDinhDanh=001090000001", "kind": "qr"}])):
        link = decide_link(fields_of(text, barcodes), REGISTRY)
        assert (link["status"], link["dossier"]) == ("review", None)
        assert any("belongs to another dossier" in e for e in link["candidates"][0]["evidence"])
    # a QR code's CCCD is the issuing system's record: any difference is a contradiction
    qr = [{"text": f"MaHoSo={A};SoDinhDanh=001195012346", "kind": "qr"}]
    link = decide_link(fields_of("Chủ hồ sơ: Nguyễn Thị Minh Khai\nNgày tiếp nhận: 27/10/2023", qr), REGISTRY)
    assert link["status"] == "review"
    assert any("QR code's citizen ID differs" in e for e in link["candidates"][0]["evidence"])
    # a printed CCCD that is nobody's, and nothing else for the code
    assert decide_link(fields_of(f"Mã hồ sơ: {A}\nSố CCCD: 070201813651"), REGISTRY)["status"] == "review"


def test_a_printed_cccd_that_is_nobodys_is_weak():
    # an OCR slip, or a child's ID on a birth extract: the name, procedure and date outweigh it
    text = (f"Mã hồ sơ: {A}\nChủ hồ sơ: Nguyễn Thị Minh Khai\nSố CCCD: 001195012845\nMã TTHC: 1.001193\n"
            "Ngày tiếp nhận: 27/10/2023")
    link = decide_link(fields_of(text), REGISTRY)
    assert link["status"] == "linked"
    assert any("nobody's in the registry" in e for e in link["candidates"][0]["evidence"])
    # with the procedure and the date only, it is not outweighed
    text = f"Mã hồ sơ: {A}\nSố CCCD: 001195012845\nMã TTHC: 1.001193\nNgày tiếp nhận: 27/10/2023"
    assert decide_link(fields_of(text), REGISTRY)["status"] == "review"


def test_an_exact_code_alone_against_weak_fields():
    # another dossier's applicant: the person belongs elsewhere
    link = decide_link(fields_of(f"Mã hồ sơ: {A}\nChủ hồ sơ: Trần Văn Bình"), REGISTRY)
    assert link["status"] == "review"
    assert any("another dossier's applicant" in e for e in link["candidates"][0]["evidence"])
    # a name that is nobody's, outweighed by the procedure and the date that agree
    text = f"Mã hồ sơ: {A}\nChủ hồ sơ: Phạm Quốc Dũng\nMã TTHC: 1.001193\nNgày tiếp nhận: 27/10/2023"
    assert decide_link(fields_of(text), REGISTRY)["status"] == "linked"
    # ...but not by the procedure alone
    text = f"Mã hồ sơ: {A}\nChủ hồ sơ: Phạm Quốc Dũng\nMã TTHC: 1.001193"
    assert decide_link(fields_of(text), REGISTRY)["status"] == "review"


def test_repaired_and_file_name_codes_keep_the_strict_rule():
    text = "Mã hồ sơ: 000.00.O6.H56-231027-0361\nChủ hồ sơ: Phạm Quốc Dũng\nSố CCCD: 001195012345"
    assert decide_link(fields_of(text), REGISTRY)["status"] == "review"
    named = fields_of("Chủ hồ sơ: Phạm Quốc Dũng\nMã TTHC: 1.001193", file_name=f"{A}.pdf")
    assert decide_link(named, REGISTRY)["status"] == "review"


def test_damaged_code_links_when_exactly_one_dossier_fits():
    link = decide_link(fields_of("Mã hồ sơ: 000.00.O6.H56-23lO27-0361"), REGISTRY)
    assert (link["status"], link["method"], link["dossier"]) == ("linked", "text", A)
    assert link["confidence"] < 0.95


def test_damaged_code_refuses_when_the_damage_fits_two_dossiers():
    # "0SB1": S and B were repaired to 5 and 8, so any digits there fit: 0361 and 0381 both do.
    registry = [*REGISTRY, {**REGISTRY[0], "code": "000.00.06.H56-231027-0581"}]
    link = decide_link(fields_of("Mã hồ sơ: 000.00.06.H56-231027-0SB1"), registry)
    assert link["status"] == "review" and link["dossier"] is None
    assert {c["code"] for c in link["candidates"]} >= {A, B, "000.00.06.H56-231027-0581"}


def test_damaged_code_refuses_when_the_received_date_contradicts_the_code():
    moved = [{**REGISTRY[0], "received_date": "2023-11-02"}, *REGISTRY[1:]]
    link = decide_link(fields_of("Mã hồ sơ: 000.00.O6.H56-231027-0361"), moved)
    assert link["status"] == "review"
    assert any("date in the code" in e for e in link["candidates"][0]["evidence"])


def test_damaged_code_refuses_when_the_procedure_contradicts():
    text = "Mã hồ sơ: 000.00.O6.H56-231027-0361\nMã TTHC: 1.000894"
    assert decide_link(fields_of(text), REGISTRY)["status"] == "review"


def test_well_formed_code_not_in_the_registry_waits_and_is_never_forced_onto_a_neighbour():
    waiting = "000.00.06.H56-231027-0391"      # one digit from both A and B
    link = decide_link(fields_of(f"Mã hồ sơ: {waiting}\nChủ hồ sơ: Nguyễn Thị Minh Khai"), REGISTRY)
    assert (link["status"], link["dossier"], link["waiting"]) == ("review", None, waiting)
    assert link["candidates"][0]["code"] == waiting
    assert {c["code"] for c in link["candidates"][1:]} == {A, B}
    # a later import brings it in: now it links by itself
    document = {"id": 7, "link_status": "review", "link_method": None,
                "fields": fields_of(f"Mã hồ sơ: {waiting}\nChủ hồ sơ: Nguyễn Thị Minh Khai")}
    assert relink([document], REGISTRY) == []
    arrived = [*REGISTRY, {**REGISTRY[0], "code": waiting}]
    [(document_id, new)] = relink([document], arrived)
    assert (document_id, new["status"], new["dossier"]) == (7, "linked", waiting)
    assert relink([{**document, "link_method": "manual"}], arrived) == []


def test_another_offices_barcode_waits_in_review():
    foreign = "000.17.22.H56-231027-0361"
    link = decide_link(fields_of("", [{"text": foreign, "kind": "barcode"}]), REGISTRY)
    assert (link["status"], link["waiting"]) == ("review", foreign)


def test_two_different_codes_go_to_review():
    link = decide_link(fields_of(f"Mã hồ sơ: {A}\nxem thêm hồ sơ {C}"), REGISTRY)
    assert link["status"] == "review" and {c["code"] for c in link["candidates"]} == {A, C}
    # a barcode for one dossier and an exact text code of another registry dossier
    link = decide_link(fields_of(f"Mã hồ sơ: {C}", [{"text": A, "kind": "qr"}]), REGISTRY)
    assert link["status"] == "review"


def test_file_name_code_links_after_text():
    link = decide_link(fields_of("Tờ khai", file_name=f"{A}.jpg"), REGISTRY)
    assert (link["status"], link["method"], link["dossier"]) == ("linked", "filename", A)
    repaired = decide_link(fields_of("", file_name="HS 000.00.06.H56_231027_0361 khai sinh.pdf"), REGISTRY)
    assert (repaired["status"], repaired["method"]) == ("linked", "filename")


DECLARATION = ("TỜ KHAI ĐĂNG KÝ KHAI SINH\nHọ, chữ đệm, tên người yêu cầu: Nguyễn Thị Minh Khai\n"
               "Số định danh cá nhân (CCCD): 001195012345\nNgày nộp hồ sơ: ngày 27 tháng 10 năm 2023")


def test_fields_link_when_they_single_out_one_dossier():
    link = decide_link(fields_of(DECLARATION), REGISTRY)
    assert (link["status"], link["method"], link["dossier"]) == ("linked", "fields", A)


def test_fields_refuse_without_the_procedure_or_with_two_fitting_dossiers():
    without_procedure = DECLARATION.replace("TỜ KHAI ĐĂNG KÝ KHAI SINH", "TỜ KHAI")
    assert decide_link(fields_of(without_procedure), REGISTRY)["status"] == "review"
    twin = [*REGISTRY, {**REGISTRY[0], "code": "000.00.06.H56-231027-0399"}]
    link = decide_link(fields_of(DECLARATION), twin)
    assert link["status"] == "review" and len(link["candidates"]) == 2
    other_id = DECLARATION.replace("001195012345", "001195099999")
    assert decide_link(fields_of(other_id), REGISTRY)["status"] == "review"


def test_nothing_to_go_on_is_none():
    link = decide_link(fields_of("Công tác văn thư lưu trữ của xã."), REGISTRY)
    assert (link["status"], link["method"], link["candidates"]) == ("none", None, [])


def page(kind: str, code: str | None = None) -> dict:
    return {"kind": kind, "codes": [{"code": code, "source": "qr", "exact": True}] if code else []}


def test_split_parts_at_receipts_and_cover_sheets():
    pages = [page("declaration"), page("receipt", A), page("declaration"), page("other"),
             page("cover_sheet", B), page("receipt", B), page("declaration"),
             page("cover_sheet", C), page("receipt"), page("result"), page("receipt")]
    assert split_parts(pages) == [{"first_page": 1, "last_page": 4}, {"first_page": 5, "last_page": 7},
                                  {"first_page": 8, "last_page": 10}, {"first_page": 11, "last_page": 11}]
    assert split_parts([page("declaration"), page("other")]) == [{"first_page": 1, "last_page": 2}]
    assert split_parts([]) == [{"first_page": 1, "last_page": 0}]


def test_analyse_document_splits_a_feed_and_links_each_part():
    texts = [f"GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ\nMã hồ sơ: {A}", DECLARATION,
             f"GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ\nMã hồ sơ: {C}", "Bản sao giấy tờ"]
    barcodes = [[{"text": A, "kind": "barcode"}], [], [], []]
    result = analyse_document(texts, barcodes, f"{B}.pdf", REGISTRY)
    assert [(p["first_page"], p["last_page"], p["dossier"]) for p in result["parts"]] == [(1, 2, A), (3, 4, C)]
    assert result["parts"][0]["link"]["method"] == "barcode" and result["parts"][1]["link"]["method"] == "text"
    assert result["dossier"] == A and result["fields"]["kind"] == "receipt"
    assert all(c["source"] != "filename" for p in result["parts"] for c in p["fields"]["codes"])


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DIGITIZE_HOME": str(home)}
    return subprocess.run([str(PROJECT_ROOT / ".venv" / "bin" / "digitize"), *args], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.usefixtures("catalogue_backend")  # on SQLite and on PostgreSQL
def test_waiting_document_links_on_import_and_manual_decisions_stand(tmp_path):
    home = tmp_path / "home"
    conn = store.connect(home / "catalogue.sqlite")
    waiting = "000.00.06.H56-231029-0005"
    fields = fields_of(f"Mã hồ sơ: {waiting}")
    decided = LinkDecision.from_mapping(decide_link(fields, []))
    with store.transaction(conn):
        ids = [store.save_document(conn, {"sha256": f"{n:064d}", "source": f"/in/scan{n}.pdf", "status": "done",
                                          "fields": fields, "kind": "receipt"}) for n in (1, 2)]
        for document_id in ids:
            assert store.set_link(conn, document_id, decided)
    assert run_cli(home, "unlink", str(ids[1])).returncode == 0           # decided by hand: leave it
    review = run_cli(home, "review", "--json")
    assert [json.loads(line)["id"] for line in review.stdout.splitlines()] == [ids[0]]
    assert json.loads(review.stdout)["candidates"][0]["code"] == waiting

    export = tmp_path / "export.csv"
    export.write_text(f"Mã hồ sơ;Chủ hồ sơ;Ngày tiếp nhận\n{waiting};Lê Văn Tám;29/10/2023\n", encoding="utf-8")
    imported = run_cli(home, "registry", "import", str(export), "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["relinked"] == [{"document": ids[0], "dossier": waiting, "method": "text"}]
    first, second = (store.get_document(conn, i) for i in ids)
    assert (first["link_status"], first["dossier_code"], first["link_method"]) == ("linked", waiting, "text")
    assert (second["link_status"], second["dossier_code"], second["link_method"]) == ("none", None, "manual")
    assert not store.set_link(conn, ids[1], LinkDecision.from_mapping(decide_link(fields, [{"code": waiting}])))

    by_hand = run_cli(home, "link", str(ids[1]), waiting)
    assert by_hand.returncode == 0, by_hand.stderr
    assert store.get_document(conn, ids[1])["link_method"] == "manual"
    assert run_cli(home, "link", str(ids[1]), "000.00.06.H56-231029-0099").returncode == 2   # not in the registry
    assert run_cli(home, "link", "999", waiting).returncode == 2


def test_coversheet_cli_renders_pages_that_split_a_feed(tmp_path):
    home = tmp_path / "home"
    export = tmp_path / "export.csv"
    export.write_text(f"Mã hồ sơ,Chủ hồ sơ,Mã TTHC,Tên thủ tục,Ngày tiếp nhận\n"
                      f"{A},Nguyễn Thị Minh Khai,1.001193,Đăng ký khai sinh,27/10/2023\n", encoding="utf-8")
    assert run_cli(home, "registry", "import", str(export)).returncode == 0
    out = tmp_path / "covers.pdf"
    made = run_cli(home, "coversheet", A, C, "--out", str(out))
    assert made.returncode == 0, made.stderr
    assert "not in the registry" in made.stderr               # C was never imported
    images = convert_from_path(out, dpi=150, grayscale=True)
    assert len(images) == 2
    decoded = [decode_barcodes(np.asarray(image)) for image in images]
    feed = analyse_document(["", DECLARATION, "", "Bản sao"], decoded[:1] + [[]] + decoded[1:] + [[]],
                            "feed.pdf", REGISTRY)
    assert [(p["first_page"], p["last_page"], p["dossier"]) for p in feed["parts"]] == [(1, 2, A), (3, 4, C)]
    assert run_cli(home, "coversheet", "not-a-code", "--out", str(out)).returncode == 2
