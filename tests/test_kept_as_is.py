"""PDFs that already carry text, or a signature: filed byte for byte, linked and counted from their own text."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name, String

from digitize import store
from digitize.config import load_config
from tools import synth

from .conftest import json_lines, run_digitize


@pytest.fixture(scope="module")
def searchable(tmp_path_factory) -> dict:
    """A receipt made searchable by digitize itself: a PDF with a real Vietnamese text layer."""
    folder = tmp_path_factory.mktemp("as-is")
    fields = synth.make_fields(21)
    receipt = synth.render_receipt(fields, dpi=200)
    scan = synth.write_image(folder / "bien nhan.png", receipt["image"], dpi=200)
    made = run_digitize(["process", str(scan), "--out", str(folder / "made"), "--json"], folder / "maker")
    assert made.returncode == 0, made.stderr
    headers = {key: aliases[0] for key, aliases in load_config({})["registry"]["columns"].items()}
    registry = synth.write_registry(folder / "so.csv", [{**fields, "status": 4, "finished": None}], headers)
    return {"pdf": Path(json_lines(made.stdout)[0]["output"]), "registry": registry, "fields": fields,
            "folder": folder}


def _imported_home(tmp_path: Path, registry: Path) -> Path:
    home = tmp_path / "home"
    assert run_digitize(["registry", "import", str(registry)], home).returncode == 0
    return home


def _coverage(home: Path, code: str) -> dict:
    quarter = f"20{code.split('-')[1][:2]}-Q{(int(code.split('-')[1][2:4]) - 1) // 3 + 1}"
    result = run_digitize(["coverage", "--quarter", quarter, "--format", "json"], home)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_searchable_pdf_is_linked_and_counts(tmp_path, searchable):
    home = _imported_home(tmp_path, searchable["registry"])
    inbox = home / "inbox" / "may-quet-2"
    inbox.mkdir(parents=True)
    shutil.copy(searchable["pdf"], inbox / "bien nhan.pdf")
    assert run_digitize(["watch", "--once"], home).returncode == 0
    conn = store.connect(home / "catalogue.sqlite")
    [row] = store.list_documents(conn)
    code = searchable["fields"]["dossier_code"]
    assert (row["status"], row["link_status"], row["dossier_code"]) == ("done", "linked", code)
    assert Path(row["output"]).read_bytes() == searchable["pdf"].read_bytes()
    assert Path(row["output"]).parent.name == code and row["officer"] == "may-quet-2"
    period = _coverage(home, code)["periods"][0]
    assert period["digitised"] == 1 and period["received"] == 1


def _junk_over_scan(source: Path, target: Path) -> None:
    """The scan's pages with an invisible layer of garbage text (a bad scanner 'OCR')."""
    with pikepdf.open(source) as pdf:
        font = pdf.make_indirect(Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica))
        for page in pdf.pages:
            page.Resources.Font = Dictionary(Junk=font)
            junk = " ".join(["xqzk wvpl #%& zzrt 9f8g ppqq kkxw"] * 6)
            page.Contents = pdf.make_stream(b"q 612 0 0 792 0 0 cm /Scan Do Q BT 3 Tr /Junk 10 Tf 20 20 Td ("
                                            + junk.encode() + b") Tj ET")
        pdf.save(target)


def test_a_junk_text_layer_is_ocred_like_a_scan(tmp_path, searchable):
    junk = tmp_path / "junk.pdf"
    _junk_over_scan(searchable["pdf"], junk)
    result = run_digitize(["process", str(junk), "--out", str(tmp_path / "out"), "--json"], tmp_path / "home")
    assert result.returncode == 0, result.stderr
    [line] = json_lines(result.stdout)
    assert not line["kept_as_is"] and line["pages"][0]["confidence"] > 50
    text = Path(line["text_path"]).read_text(encoding="utf-8")
    assert searchable["fields"]["dossier_code"] in text and "xqzk" not in text


def _signed_with_owner_password(source: Path, target: Path, signer: str) -> None:
    """A copy with a signature field holding a signature value, encrypted with an owner password only."""
    with pikepdf.open(source) as pdf:
        value = pdf.make_indirect(Dictionary(Type=Name.Sig, Filter=Name("/Adobe.PPKLite"),
                                             SubFilter=Name("/ETSI.CAdES.detached"), Name=String(signer),
                                             ByteRange=Array([0, 0, 0, 0]), Contents=String(b"\0" * 64)))
        field = pdf.make_indirect(Dictionary(FT=Name.Sig, T=String("Chữ ký số"), V=value, Type=Name.Annot,
                                             Subtype=Name.Widget, Rect=Array([0, 0, 0, 0]), P=pdf.pages[0].obj))
        pdf.pages[0].Annots = Array([field])
        pdf.Root.AcroForm = Dictionary(Fields=Array([field]), SigFlags=3)
        pdf.save(target, encryption=pikepdf.Encryption(owner="chi-chu-so-huu", user=""))


def test_a_signed_pdf_with_an_owner_password_is_filed_byte_for_byte(tmp_path, searchable):
    signed = tmp_path / "ket qua ky so.pdf"
    _signed_with_owner_password(searchable["pdf"], signed, "UBND xã An Bình")
    home = _imported_home(tmp_path, searchable["registry"])
    result = run_digitize(["process", str(signed), "--json"], home)
    assert result.returncode == 0, result.stderr
    [line] = json_lines(result.stdout)
    assert line["status"] == "done" and line["kept_as_is"]
    assert line["fields"]["signatures"] == ["UBND xã An Bình"]
    assert line["link"]["status"] == "linked" and line["dossier"] == searchable["fields"]["dossier_code"]
    assert Path(line["output"]).read_bytes() == signed.read_bytes()
    conn = store.connect(home / "catalogue.sqlite")
    [row] = store.list_documents(conn)
    assert row["fields"]["signatures"] == ["UBND xã An Bình"]
    # A PDF that needs a password to open is still refused.
    locked = tmp_path / "khoa.pdf"
    with pikepdf.open(searchable["pdf"]) as pdf:
        pdf.save(locked, encryption=pikepdf.Encryption(owner="o", user="u"))
    assert run_digitize(["process", str(locked)], home).returncode == 8
