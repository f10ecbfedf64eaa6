"""Dossier code rules at their edges: the agency letter A and Z, months 01 and 12, month 13,
exactly four characters that are not strokes, registry cells, what a damaged reading may stand for."""
from __future__ import annotations

from datetime import date

import pytest

from digitize.codes import code_date, damage_fits, find_codes, find_exact_codes, is_well_formed, normalise_code

CODE = "000.00.06.H56-231027-0361"


@pytest.mark.parametrize("code, day", [
    ("000.00.06.H56-240101-0001", date(2024, 1, 1)), ("000.00.06.H56-241231-9999", date(2024, 12, 31)),
    ("H56.14-240229-0001", date(2024, 2, 29)), ("000.00.06.H56-000101-0001", date(2000, 1, 1)),
])
def test_the_date_inside_a_code(code, day):
    assert code_date(code) == day and is_well_formed(code)


@pytest.mark.parametrize("code", ["000.00.06.H56-241301-0001", "000.00.06.H56-240001-0001",
                                  "000.00.06.H56-230229-0001", "000.00.06.H56-240132-0001",
                                  "000.00.06.H56-240101-001", "000.00.06.H56-2401010-0001", "H56-240101-0001",
                                  "000.00.06.h56-240101-0001", ""])
def test_codes_that_are_not_well_formed(code):
    assert not is_well_formed(code)


def test_month_13_in_a_qr_payload_is_not_taken_as_exact():
    assert find_exact_codes("000.00.06.H56-231327-0361|1.001193|001195012345") == []
    assert find_exact_codes(f"000.00.06.H56-231327-0361|{CODE}") == [CODE]
    assert find_exact_codes(f"{CODE}|{CODE}|x") == [CODE]             # once, however often it is written
    assert find_exact_codes(None) == [] and find_exact_codes("") == []
    assert find_exact_codes("MaHoSo: 000.00.06.H56 - 231027 - 0361|x") == [CODE]     # spaces around dashes
    assert find_exact_codes(f"X{CODE}") == [] and find_exact_codes(f"{CODE}5") == []   # glued to other characters


@pytest.mark.parametrize("letter", ["A", "Z", "B"])
def test_any_agency_letter_a_to_z(letter):
    code = f"000.00.06.{letter}56-231027-0361"
    assert find_codes(f"Mã hồ sơ: {code}") == [{"code": code, "raw": code, "exact": True}]
    assert find_exact_codes(code) == [code]


def test_exactly_four_characters_besides_strokes_are_enough():
    # H, 5, 6 and the final 2: four characters a row of bars is not read as.
    assert [c["code"] for c in find_codes("H56.11-111111-1112")] == ["H56.11-111111-1112"]
    assert find_codes("H56.11-111111-1111") == []       # three: could be a barcode's bars
    # A stroke reading does not hide a real code after it.
    found = find_codes("I11.11-111111-1111 rồi Mã hồ sơ: H56.14-240823-0001")
    assert [c["code"] for c in found] == ["H56.14-240823-0001"]


def test_repaired_codes_are_never_exact_and_each_is_found_once():
    found = find_codes(f"{CODE} và 000.00.O6.H56-231027-0361, lại {CODE}")
    assert found == [{"code": CODE, "raw": CODE, "exact": True}]
    damaged = find_codes("Mã: 000.00.O6.H56-231027-0362")
    assert damaged == [{"code": "000.00.06.H56-231027-0362", "raw": "000.00.O6.H56-231027-0362", "exact": False}]
    assert find_codes(None) == [] and find_codes("") == []


def test_registry_cells_are_normalised():
    assert normalise_code(" 000.00.06.h56–231027‑0361 ") == CODE
    assert normalise_code("000.00.06.H56 - 231027 - 0361") == CODE
    assert normalise_code("h56.14-240823-0001") == "H56.14-240823-0001"
    assert normalise_code(241027) == "241027"
    nfd = "Ma\u0301"                   # a combining accent from macOS or Word
    assert normalise_code(nfd) == "MÁ"


def test_what_a_damaged_reading_may_stand_for():
    assert damage_fits("000.00.O6.H56-231027-0361", CODE)            # O read for 0: could be any digit
    assert damage_fits("000.00.06.H56-231027-0SB1", "000.00.06.H56-231027-0581")
    assert not damage_fits("000.00.06.H56-231027-0362", CODE)        # a clean 2 where 1 belongs
    assert not damage_fits("000.00.06.B56-231027-0361", CODE)        # a clean B where H belongs
    assert not damage_fits("000.00.06.H56-231027-036", CODE)         # a character short
    assert not damage_fits("000.00.06.H56-231027-03611", CODE)       # a character long
    assert damage_fits("000.00.06.H56-231027-036l", CODE)
