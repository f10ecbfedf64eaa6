"""The linking decision as a matrix on the pure functions: what is agreement, what is a
contradiction, where a feed splits, and which outcome each tier gives. Written against
behaviour the README promises (not against evidence weights, which are tuned elsewhere)."""
from __future__ import annotations

import pytest

from digitize.extract import extract_page, merge_fields
from digitize.link import (EVIDENCE, NAME_CONFLICT, NAME_MATCH, REASONS, analyse_document, compare, decide_link,
                           relink, split_parts)

A = "000.00.06.H56-231027-0361"
B = "000.00.06.H56-231027-0381"
C = "000.00.06.H56-231028-0002"
D = "000.00.06.H56-241231-0007"
DOSSIER_A = {"code": A, "procedure_code": "1.001193", "procedure_name": "Đăng ký khai sinh",
             "applicant": "Lê Văn Tám", "cccd": "001195012345", "received_date": "2023-10-27",
             "due_date": "2023-10-30", "finished_date": "2023-11-02"}
REGISTRY = [
    DOSSIER_A,
    {"code": B, "procedure_code": "1.000894", "procedure_name": "Đăng ký kết hôn", "applicant": "Trần Văn Bình",
     "cccd": "001090000001", "received_date": "2023-10-27", "due_date": "2023-11-01", "finished_date": None},
    {"code": C, "procedure_code": "1.001193", "procedure_name": "Đăng ký khai sinh", "applicant": "Phạm Thị Hoa",
     "cccd": None, "received_date": "2023-10-28", "due_date": "2023-10-31", "finished_date": None},
    {"code": D, "procedure_code": "2.000635", "procedure_name": "Chứng thực bản sao", "applicant": "Đỗ Văn Dũng",
     "cccd": None, "received_date": "2024-12-31", "due_date": "2025-01-02", "finished_date": None},
]


def fields_of(text: str = "", barcodes: list[dict] | None = None, file_name: str | None = None) -> dict:
    return merge_fields([extract_page(text, barcodes or [])], file_name)


def outcome(link: dict) -> tuple:
    return link["status"], link["method"], link["dossier"]


def test_names_agree_at_90_and_disagree_below_80():
    assert NAME_MATCH == 90 and NAME_CONFLICT == 80
    support, conflict = compare({"applicant": "Lê Văn Táp"}, DOSSIER_A)      # similarity exactly 90
    assert "applicant" in support and not conflict
    support, conflict = compare({"applicant": "Lê Văn Tpp"}, DOSSIER_A)      # exactly 80: proves nothing
    assert "applicant" not in support and not conflict
    support, conflict = compare({"applicant": "Lê Vxn Tpp"}, DOSSIER_A)      # below 80: another person
    assert "applicant" not in support and conflict


def test_a_matching_cccd_is_agreement_and_another_is_a_contradiction():
    support, conflict = compare({"cccd": "001195012345"}, DOSSIER_A)
    assert "cccd" in support and not conflict
    support, conflict = compare({"cccd": "001195012346"}, DOSSIER_A)
    assert "cccd" not in support and conflict
    assert compare({"cccd": "001195012345"}, {**DOSSIER_A, "cccd": None}) == ([], [])   # nothing to compare


def test_procedure_by_code_or_by_the_title():
    support, conflict = compare({"procedure_code": "1.001193.000.00.00.H56"}, DOSSIER_A)
    assert "procedure" in support and not conflict
    support, conflict = compare({"procedure_code": "1.000894"}, DOSSIER_A)
    assert "procedure" not in support and conflict
    for named in ({"procedure_name": "Đăng ký khai sinh"}, {"title": "TỜ KHAI ĐĂNG KÝ KHAI SINH"}):
        support, conflict = compare(named, {**DOSSIER_A, "procedure_code": None})
        assert "procedure" in support and not conflict, named
    assert compare({"title": "TỜ KHAI ĐĂNG KÝ KẾT HÔN"}, {**DOSSIER_A, "procedure_code": None}) == ([], [])


@pytest.mark.parametrize("day", ["2023-10-27", "2023-10-30", "2023-11-02"])
def test_a_date_of_the_dossier_on_the_document_is_evidence(day):
    support, conflict = compare({"dates": [day, "2020-01-01"]}, DOSSIER_A)
    assert "date" in support and not conflict


def test_a_received_date_on_the_document_must_match():
    assert compare({"received_date": "2023-10-27"}, DOSSIER_A) == ([], [])
    support, conflict = compare({"received_date": "2023-10-28"}, DOSSIER_A)
    assert conflict and not support
    assert compare({"dates": ["2020-01-01"]}, DOSSIER_A) == ([], [])


DECLARATION = "TỜ KHAI ĐĂNG KÝ KHAI SINH\nHọ, chữ đệm, tên người yêu cầu: Lê Văn Tám\n"


def test_fields_link_on_a_date_or_a_cccd_never_on_the_name_alone():
    with_date = decide_link(fields_of(DECLARATION + "Hẹn trả: ngày 30 tháng 10 năm 2023"), REGISTRY)
    assert outcome(with_date) == ("linked", "fields", A)
    with_cccd = decide_link(fields_of(DECLARATION + "Số CCCD: 001195012345"), REGISTRY)
    assert outcome(with_cccd) == ("linked", "fields", A)
    name_only = decide_link(fields_of(DECLARATION), REGISTRY)
    assert outcome(name_only) == ("review", None, None) and [c["code"] for c in name_only["candidates"]] == [A]
    other_date = decide_link(fields_of(DECLARATION + "ngày 05 tháng 01 năm 2022"), REGISTRY)
    assert outcome(other_date) == ("review", None, None)


def test_exact_text_code_links_unless_the_document_contradicts_it():
    code_line = f"Mã hồ sơ: {A}\n"
    assert outcome(decide_link(fields_of(code_line + "Số CCCD: 001195012345"), REGISTRY)) == ("linked", "text", A)
    for contradiction in ("Số CCCD: 001195012346", "Mã TTHC: 1.000894", "Chủ hồ sơ: Đỗ Văn Dũng"):
        link = decide_link(fields_of(code_line + contradiction), REGISTRY)
        assert outcome(link) == ("review", None, None), contradiction
        assert [c["code"] for c in link["candidates"]] == [A] and link["reason"]
    linked = decide_link(fields_of(code_line), REGISTRY)
    assert linked["confidence"] == 0.95 and linked["reason"] is None and linked["waiting"] is None


def test_a_barcode_in_the_registry_links_with_full_confidence():
    link = decide_link(fields_of("Chủ hồ sơ: Lê Văn Tám", [{"text": A, "kind": "barcode"}]), REGISTRY)
    assert outcome(link) == ("linked", "barcode", A) and link["confidence"] == 1.0
    assert [c["code"] for c in link["candidates"]] == [A]


def test_repaired_code_needs_the_date_in_the_code_to_agree():
    damaged = "Mã hồ sơ: 000.00.O6.H56-241231-0007"
    link = decide_link(fields_of(damaged), REGISTRY)
    assert outcome(link) == ("linked", "text", D) and link["confidence"] < 0.95
    moved = [{**d, "received_date": "2025-01-02"} if d["code"] == D else d for d in REGISTRY]
    link = decide_link(fields_of(damaged), moved)
    assert outcome(link) == ("review", None, None) and link["reason"]
    # The same code read exactly is the office's own writing: the date in it is not checked again.
    assert outcome(decide_link(fields_of(f"Mã hồ sơ: {D}"), moved)) == ("linked", "text", D)


def test_a_well_formed_code_not_in_the_registry_waits_with_its_neighbours():
    waiting = "000.00.06.H56-231028-0003"       # one digit from C, more from A and B
    link = decide_link(fields_of(f"Mã hồ sơ: {waiting}"), REGISTRY)
    assert outcome(link) == ("review", None, None) and link["waiting"] == waiting and link["reason"]
    assert [c["code"] for c in link["candidates"]] == [waiting, C]
    far = decide_link(fields_of("Mã hồ sơ: 000.00.06.H56-200101-0999"), REGISTRY)
    assert [c["code"] for c in far["candidates"]] == ["000.00.06.H56-200101-0999"]


def test_two_codes_or_a_code_contradicted_elsewhere_go_to_review():
    link = decide_link(fields_of(f"Mã hồ sơ: {A}\nxem {C}"), REGISTRY)
    assert outcome(link) == ("review", None, None) and {c["code"] for c in link["candidates"]} == {A, C}
    # A code of another registry dossier read exactly in a lower tier contradicts the barcode.
    link = decide_link(fields_of(f"Mã hồ sơ: {C}", [{"text": A, "kind": "qr"}]), REGISTRY)
    assert outcome(link) == ("review", None, None) and {c["code"] for c in link["candidates"]} == {A, C}
    # The same code in two tiers is agreement.
    assert outcome(decide_link(fields_of(f"Mã hồ sơ: {A}", [{"text": A, "kind": "qr"}]), REGISTRY)) == \
        ("linked", "barcode", A)
    # A file name naming an unknown code does not contradict the text.
    assert outcome(decide_link(fields_of(f"Mã hồ sơ: {A}", file_name="000.00.06.H56-200101-0999.pdf"),
                               REGISTRY)) == ("linked", "text", A)


def test_relink_revisits_only_automatic_undecided_documents():
    fields = fields_of(f"Mã hồ sơ: {C}")
    documents = [{"id": 1, "link_status": "review", "link_method": None, "fields": fields},
                 {"id": 2, "link_status": "none", "link_method": "manual", "fields": fields},
                 {"id": 3, "link_status": "linked", "link_method": "text", "fields": fields_of(f"Mã hồ sơ: {B}")},
                 {"id": 4, "link_status": "none", "link_method": None, "fields": fields_of("Không có mã.")},
                 {"id": 5, "link_status": "none", "link_method": None, "fields": fields}]
    assert [(number, outcome(link)) for number, link in relink(documents, REGISTRY)] == [
        (1, ("linked", "text", C)), (5, ("linked", "text", C))]


def page(kind: str, code: str | None = None) -> dict:
    return {"kind": kind, "codes": [{"code": code, "source": "qr", "exact": True}] if code else []}


def ranges(pages: list[dict]) -> list[tuple[int, int]]:
    return [(p["first_page"], p["last_page"]) for p in split_parts(pages)]


@pytest.mark.parametrize("kinds, expected", [
    # A cover sheet for B, then a receipt for C: two dossiers.
    ([("cover_sheet", B), ("receipt", C), ("declaration", None)], [(1, 1), (2, 3)]),
    # A cover sheet, then the receipt of the same dossier, or a receipt without a code: one.
    ([("cover_sheet", B), ("receipt", B), ("declaration", None)], [(1, 3)]),
    ([("cover_sheet", B), ("receipt", None), ("declaration", None)], [(1, 3)]),
    # Two receipts back to back, and a receipt without a code after other pages: each opens one.
    ([("receipt", A), ("receipt", C)], [(1, 1), (2, 2)]),
    ([("receipt", A), ("declaration", None), ("receipt", None), ("other", None)], [(1, 2), (3, 4)]),
    # Pages before the first separator stay with the first dossier.
    ([("declaration", None), ("other", None), ("receipt", A), ("result", None)], [(1, 4)]),
    ([("receipt", None), ("receipt", None), ("declaration", None)], [(1, 3)]),
    ([("declaration", None)], [(1, 1)]),
])
def test_a_feed_splits_at_receipts_and_cover_sheets(kinds, expected):
    assert ranges([page(kind, code) for kind, code in kinds]) == expected


def test_each_part_of_a_feed_is_linked_on_its_own_pages():
    texts = [f"GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ\nMã hồ sơ: {A}", "Bản sao giấy khai sinh",
             f"GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ\nMã hồ sơ: {D}", "Trang 2"]
    result = analyse_document(texts, [[], [], [{"text": D, "kind": "qr"}], []], f"{B}.pdf", REGISTRY)
    assert [(p["first_page"], p["last_page"], p["dossier"], p["link"]["method"]) for p in result["parts"]] == [
        (1, 2, A, "text"), (3, 4, D, "barcode")]
    assert (result["dossier"], result["link"]) == (A, result["parts"][0]["link"])
    assert result["fields"] is result["parts"][0]["fields"]
    # Codes keep the page of the feed they were read on.
    assert [(c["source"], c["page"]) for c in result["parts"][1]["fields"]["codes"]] == [("qr", 3)]
    # One dossier in the file: its name counts.
    alone = analyse_document(["Bản sao giấy tờ"], [[]], f"{B}.pdf", REGISTRY)
    assert outcome(alone["link"]) == ("linked", "filename", B)


# --- what a reviewer is shown: the reason, the confidence, the ranked candidates ---

def all_outcomes() -> list[dict]:
    """One decision of each kind, for the invariants below."""
    near_a = "000.00.06.H56-231027-0371"       # not in the registry, one digit from A
    return [
        decide_link(fields_of("", [{"text": A, "kind": "barcode"}]), REGISTRY),
        decide_link(fields_of(f"Mã hồ sơ: {A}\nSố CCCD: 001195012345"), REGISTRY),
        decide_link(fields_of(f"Mã hồ sơ: {A}\nSố CCCD: 001195012346"), REGISTRY),
        decide_link(fields_of("Mã hồ sơ: 000.00.O6.H56-241231-0007"), REGISTRY),
        decide_link(fields_of(f"Mã hồ sơ: {near_a}\n{DECLARATION}Số CCCD: 001195012345\nMã TTHC: 1.001193"),
                    REGISTRY),
        decide_link(fields_of(f"Mã hồ sơ: {A}\nxem 000.00.O6.H56-200101-0999"), REGISTRY),
        decide_link(fields_of(DECLARATION + "Số CCCD: 001195012345"), REGISTRY),
        decide_link(fields_of("Mã hồ sơ: 000.00.06.H56-231027-0SB1"),
                    [*REGISTRY, {**DOSSIER_A, "code": "000.00.06.H56-231027-0581"}]),
    ]


def test_scores_and_confidences_stay_between_0_and_1_and_candidates_are_ranked():
    for link in all_outcomes():
        assert 0.0 <= link["confidence"] <= 1.0
        scores = [c["score"] for c in link["candidates"]]
        assert all(0.0 <= score <= 1.0 for score in scores), link
        ranked = scores[1:] if link["waiting"] else scores
        assert ranked == sorted(ranked, reverse=True), link
        if link["status"] == "linked":
            assert link["candidates"][0]["code"] == link["dossier"]
            assert link["candidates"][0]["score"] == link["confidence"] and link["reason"] is None
        else:
            assert link["confidence"] == 0.0 and link["dossier"] is None and link["reason"] in REASONS.values()


def test_each_refusal_says_why():
    waiting = decide_link(fields_of("Mã hồ sơ: 000.00.06.H56-200101-0999"), REGISTRY)
    assert waiting["reason"] == REASONS["waiting"]
    assert waiting["candidates"][0] == {"code": "000.00.06.H56-200101-0999", "score": 0.0,
                                        "evidence": [EVIDENCE["text"], EVIDENCE["not_in_registry"]]}
    several = decide_link(fields_of(f"Mã hồ sơ: {A}\nxem 000.00.O6.H56-200101-0999"), REGISTRY)
    assert several["reason"] == REASONS["several_codes"]
    known, unknown = several["candidates"]
    assert (known["code"], unknown["code"]) == (A, "000.00.06.H56-200101-0999")
    assert known["score"] > unknown["score"] == 0.0                        # only a registry code is a candidate
    assert known["evidence"] == [EVIDENCE["text"]] and unknown["evidence"] == [EVIDENCE["text_repaired"]]
    contradicted = decide_link(fields_of(f"Mã hồ sơ: {A}\nSố CCCD: 001195012346"), REGISTRY)
    assert contradicted["reason"] == REASONS["contradiction"] and contradicted["candidates"][0]["score"] < 0.95
    # A received date on the page that differs from the registry's.
    dated = decide_link(fields_of(f"Mã hồ sơ: {A}\nNgày tiếp nhận: 28/10/2023"), REGISTRY)
    assert (dated["status"], dated["reason"]) == ("review", REASONS["contradiction"])
    fit_two = decide_link(fields_of("Mã hồ sơ: 000.00.06.H56-231027-0SB1"),
                          [*REGISTRY, {**DOSSIER_A, "code": "000.00.06.H56-231027-0581"}])
    assert fit_two["reason"] == REASONS["ambiguous"]
    assert all(EVIDENCE["text_repaired"] in c["evidence"] for c in fit_two["candidates"])
    by_name = decide_link(fields_of(DECLARATION), REGISTRY)
    assert by_name["reason"] == REASONS["ambiguous"]
    nothing = decide_link(fields_of("Công tác văn thư."), REGISTRY)
    assert (nothing["status"], nothing["reason"], nothing["confidence"]) == ("none", REASONS["no_code"], 0.0)


def test_a_repaired_code_says_so_and_fields_links_are_less_sure_than_codes():
    repaired = decide_link(fields_of("Mã hồ sơ: 000.00.O6.H56-241231-0007"), REGISTRY)
    assert EVIDENCE["text_repaired"] in repaired["candidates"][0]["evidence"]
    by_fields = decide_link(fields_of(DECLARATION + "Hẹn trả: ngày 30 tháng 10 năm 2023"), REGISTRY)
    assert by_fields["status"] == "linked" and 0.0 < by_fields["confidence"] < 0.9


def test_neighbours_two_edits_away_are_shown_and_a_cccd_alone_makes_a_candidate():
    two_away = "000.00.06.H56-231028-0013"     # two digits from C, more from the others
    link = decide_link(fields_of(f"Mã hồ sơ: {two_away}"), REGISTRY)
    assert [c["code"] for c in link["candidates"]] == [two_away, C]
    # The CCCD of A under a name read badly: A is the one to look at, not linked.
    link = decide_link(fields_of("TỜ KHAI\nHọ, chữ đệm, tên người yêu cầu: Lê Vxn Tpp\nSố CCCD: 001195012345"),
                       REGISTRY)
    assert link["status"] == "review" and [c["code"] for c in link["candidates"]] == [A]


def test_a_title_agrees_with_the_procedure_at_90():
    no_code = {**REGISTRY[3], "procedure_code": None, "procedure_name": "Chứng thực"}
    assert "procedure" in compare({"title": "CHỨNG XHỰC"}, no_code)[0]          # partial similarity exactly 90


def test_conflicts_are_never_named_as_agreement():
    for fields in ({"cccd": "001195012346"}, {"procedure_code": "1.000894"}, {"applicant": "Đỗ Văn Dũng"},
                   {"received_date": "2023-10-28"}):
        support, conflict = compare(fields, DOSSIER_A)
        assert conflict and not support and not set(conflict) & {"applicant", "cccd", "procedure", "date"}


def test_more_agreeing_evidence_ranks_higher_and_a_contradiction_lower():
    person = {"applicant": "Lê Văn Tám", "received_date": "2023-10-20", "due_date": "2023-10-25",
              "finished_date": None, "cccd": None, "procedure_code": None, "procedure_name": "Thủ tục khác"}
    dossiers = {
        "all four": {"cccd": "001195012345", "procedure_code": "1.001193", "due_date": "2023-10-30"},
        "name, CCCD, procedure": {"cccd": "001195012345", "procedure_code": "1.001193"},
        "name and CCCD": {"cccd": "001195012345"},
        "name and date": {"due_date": "2023-10-30"},
        "name only": {},
    }
    registry = [{**person, "code": f"000.00.06.H56-231020-{n:04d}", **extra}
                for n, extra in enumerate(dossiers.values(), 1)]
    document = fields_of("TỜ KHAI\nHọ, chữ đệm, tên người yêu cầu: Lê Văn Tám\nSố CCCD: 001195012345\n"
                         "Mã TTHC: 1.001193\nHẹn trả: ngày 30 tháng 10 năm 2023")
    link = decide_link(document, registry)
    assert [c["code"] for c in link["candidates"]] == [d["code"] for d in registry]
    scores = [c["score"] for c in link["candidates"]]
    assert all(a > b for a, b in zip(scores, scores[1:])) and scores[-1] > 0, scores
    contradicted = {**person, "code": "000.00.06.H56-231020-0009", "procedure_code": "1.000894"}
    shown = decide_link(document, [registry[-1], contradicted])["candidates"]
    assert [c["code"] for c in shown] == [registry[-1]["code"], contradicted["code"]]
    assert shown[0]["score"] > shown[1]["score"]


AGREEING = "Mã TTHC: 1.001193\nHẹn trả: ngày 30 tháng 10 năm 2023\n"


@pytest.mark.parametrize("kind", ["qr", "barcode"])
def test_a_symbol_code_outweighs_one_weak_disagreement(kind):
    # A name nobody in the registry has (an OCR slip) against procedure and date that agree.
    link = decide_link(fields_of(AGREEING + "Chủ hồ sơ: Hoàng Thị Xuân", [{"text": A, "kind": kind}]), REGISTRY)
    assert outcome(link) == ("linked", "barcode", A)


def test_another_dossiers_applicant_sends_an_exact_code_to_review():
    # Procedure and date agree with A, but the name is B's applicant: whose paper is this?
    link = decide_link(fields_of(f"Mã hồ sơ: {A}\n" + AGREEING + "Chủ hồ sơ: Trần Văn Bình"), REGISTRY)
    assert outcome(link) == ("review", None, None) and link["reason"] == REASONS["contradiction"]
    assert EVIDENCE["applicant_elsewhere"] in link["candidates"][0]["evidence"]
    # A neighbour shown for a waiting code carries the same warning.
    near_a = "000.00.06.H56-231027-0371"
    waiting = decide_link(fields_of(f"Mã hồ sơ: {near_a}\nChủ hồ sơ: Trần Văn Bình"), REGISTRY)
    neighbour = next(c for c in waiting["candidates"] if c["code"] == A)
    assert EVIDENCE["applicant_elsewhere"] in neighbour["evidence"]


def test_a_contradicted_file_name_code_keeps_the_score_of_what_agrees():
    link = decide_link(fields_of("TỜ KHAI\nHọ, chữ đệm, tên người yêu cầu: Lê Văn Tám\n" + AGREEING +
                                 "Ngày tiếp nhận: 28/10/2023", file_name=f"{A}.pdf"), REGISTRY)
    assert outcome(link) == ("review", None, None)
    assert 0.0 < link["candidates"][0]["score"] < 0.9


def test_a_name_90_similar_to_another_dossiers_applicant_is_theirs():
    other = {**REGISTRY[2], "code": "000.00.06.H56-231029-0001", "applicant": "Hà Văn Mai"}
    link = decide_link(fields_of(f"Mã hồ sơ: {A}\n" + AGREEING + "Chủ hồ sơ: Hà Văn Mạc"), [*REGISTRY, other])
    assert outcome(link) == ("review", None, None)           # "Hà Văn Mạc" is 90 similar to "Hà Văn Mai"


def test_a_candidate_found_by_cccd_shows_a_name_that_is_another_dossiers():
    link = decide_link(fields_of("TỜ KHAI\nHọ, chữ đệm, tên người yêu cầu: Trần Văn Bình\nSố CCCD: 001195012345"),
                       REGISTRY)
    found = next(c for c in link["candidates"] if c["code"] == A)
    assert link["status"] == "review" and EVIDENCE["applicant_elsewhere"] in found["evidence"]
