"""Signed digitised copies and the format rules: real scans through the real engine, a CA and
officers made here, signatures checked by digitize and independently by poppler's pdfsig."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pikepdf
import pytest

from digitize import config as site_config, jobs, sign, store
from digitize.assemble import XMP_NAMESPACE
from digitize.pipelines import load_pipeline
from tests import pki
from tests.conftest import run_digitize
from tools import synth

PASSWORD = "mật-khẩu 2024"
OFFICER = "Nguyễn Văn An"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("pki")
    ca = pki.make_ca()
    officer = pki.issue(ca, OFFICER)
    other = pki.issue(ca, "Trần Thị Bình")
    expired = pki.issue(ca, "Lê Văn Cũ", valid_from=officer.cert.not_valid_before_utc.replace(year=2020), days=30)
    return {
        "ca": ca, "officer": officer, "folder": folder,
        "ca_pem": pki.write_cert_pem(folder / "ca.pem", ca),
        "p12": pki.write_pkcs12(folder / "an.p12", officer, ca, PASSWORD),
        "other_p12": pki.write_pkcs12(folder / "binh.p12", other, ca, PASSWORD),
        "expired_p12": pki.write_pkcs12(folder / "expired.p12", expired, ca, PASSWORD),
    }


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> dict:
    """A colour decision with a red seal at 200 dpi and a grey prose page scanned at 150 dpi, through the engine."""
    folder = tmp_path_factory.mktemp("scans")
    seal = synth.render_decision(synth.make_fields(31), dpi=200, color=True)
    synth.write_image(folder / "quyet-dinh.jpg", synth.scan(seal, seed=3)["image"], dpi=200, quality=92)
    low = synth.render_prose(synth.SAMPLE_PARAGRAPHS[:4], dpi=150)
    synth.write_image(folder / "thong-bao-150.png", low["image"], dpi=150)
    home = folder / "home"
    conn, run = _run(home, site_config.load_config({"DIGITIZE_HOME": str(home)}))
    intakes = [jobs.Intake(path, str(path), OFFICER) for path in sorted(folder.glob("*.*"))]
    results = [result.to_json() for _, result in jobs.process(intakes, run, conn)]
    by_name = {Path(r["source"]).name: r for r in results}
    assert all(r["status"] == "done" for r in results), results
    return {"colour": by_name["quyet-dinh.jpg"], "low": by_name["thong-bao-150.png"], "folder": folder,
            "home": home}


def _run(home: Path, config: dict):
    """A catalogue and a run into the archive under `home`, as the watcher makes them."""
    paths = site_config.resolve_paths(config)
    site_config.ensure_folders(paths)
    return store.connect(paths["catalogue"]), jobs.Run(load_pipeline("intake"), config,
                                                       jobs.Destination(paths["archive"]), 2, paths["work"])


def _copy(result: dict, tmp_path: Path, name: str = "copy.pdf") -> Path:
    target = tmp_path / name
    shutil.copyfile(result["output"], target)
    return target


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _settings(spec: sign.KeySpec, **options) -> sign.SigningSettings:
    return sign.SigningSettings(enabled=True, office=spec, **options)


def _p12(path: Path, env: str = "TEST_SIGN_PASSWORD") -> sign.KeySpec:
    return sign.KeySpec("pkcs12", pkcs12=str(path), password_env=env)


# --- format rules ---
def test_colour_scan_stays_rgb_at_its_resolution_and_meets_the_format_rules(processed, keys):
    output = processed["colour"]["output"]
    listing = subprocess.run(["pdfimages", "-list", output], capture_output=True, text=True, check=True).stdout
    row = listing.splitlines()[2].split()
    assert row[5] == "rgb" and row[6] == "3"  # color, comp
    assert int(row[12]) == 200 and int(row[13]) == 200  # x-ppi, y-ppi: 100% scale
    assert processed["colour"]["warnings"] == []
    result = run_digitize(["check", output, "--json", "--trust", str(keys["ca_pem"])], processed["folder"])
    rules = {r["rule"]: r["ok"] for r in json.loads(result.stdout)["rules"]}
    assert rules == {"pdf_version": True, "colour": True, "resolution": True, "scale": True, "signature": False}
    assert result.returncode == 13  # unsigned: the copy does not count yet


def test_a_150_dpi_scan_is_flagged_in_the_result_and_by_check(processed):
    low = processed["low"]
    rules = [w["rule"] for w in low["warnings"]]
    assert rules == ["resolution", "colour"]  # and grey because the scanner delivered grey
    assert "150 dpi" in low["warnings"][0]["message"]
    result = run_digitize(["check", low["output"]], processed["folder"])
    assert result.returncode == 13
    assert re.search(r"FAIL\s+resolution\s+thấp nhất / lowest 150 dpi", result.stdout)
    assert re.search(r"FAIL\s+colour", result.stdout)
    # In review too, to be scanned again, though nothing is left to decide about its link.
    review = run_digitize(["review", "--json"], processed["home"])
    waiting = [json.loads(line) for line in review.stdout.splitlines()]
    assert [Path(d["source"]).name for d in waiting if d["warnings"]] == ["thong-bao-150.png"]


def test_xmp_carries_what_the_archive_keeps(processed):
    result = processed["colour"]
    with pikepdf.open(result["output"]) as pdf, pdf.open_metadata() as xmp:
        ours = {key.split("}")[1]: value for key, value in xmp.items() if key.startswith(f"{{{XMP_NAMESPACE}}}")}
        assert pdf.pdf_version >= "1.4"
        created = xmp["xmp:CreateDate"]
    assert ours["sha256"] == result["sha256"]
    assert ours["pageCount"] == "1" and ours["documentKind"] == result["fields"]["kind"]
    assert ours["documentName"] == result["fields"]["title"] and ours["documentName"]
    assert ours["pipeline"] == "intake" and ours["pipelineVersion"] == load_pipeline("intake")["hash"]
    assert ours["software"].startswith("digitize ")
    assert ours["officer"] == OFFICER
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", ours["digitisedAt"])
    assert created.startswith(ours["digitisedAt"][:16])
    assert "formatWarnings" not in ours  # a colour 200 dpi page meets the rules
    with pikepdf.open(processed["low"]["output"]) as pdf, pdf.open_metadata() as xmp:
        assert "150 dpi" in xmp[f"{{{XMP_NAMESPACE}}}formatWarnings"]


# --- signing and verifying ---
def _pdfsig(path: Path) -> str:
    return subprocess.run(["pdfsig", str(path)], capture_output=True, text=True).stdout


def test_sign_in_place_then_verify_with_digitize_and_pdfsig_and_one_changed_byte_breaks_both(
        processed, keys, tmp_path):
    copy = _copy(processed["colour"], tmp_path)
    inode = copy.stat().st_ino
    result = run_digitize(["sign", str(copy), "--pkcs12", str(keys["p12"]), "--password-env", "KEY_PASSWORD"],
                          processed["folder"], KEY_PASSWORD=PASSWORD)
    assert result.returncode == 0, result.stderr
    assert copy.stat().st_ino != inode  # a new file renamed over the old one
    assert [p.name for p in tmp_path.iterdir()] == ["copy.pdf"]  # no temporary left behind
    verified = run_digitize(["verify", str(copy), "--trust", str(keys["ca_pem"])], processed["folder"])
    assert verified.returncode == 0, verified.stdout
    assert "nguyên vẹn / intact" in verified.stdout and OFFICER in verified.stdout
    assert "tin cậy / trusted" in verified.stdout and "+07:00" in verified.stdout
    assert "Signature Validation: Signature is Valid." in _pdfsig(copy)
    checked = run_digitize(["check", str(copy), "--trust", str(keys["ca_pem"])], processed["folder"])
    assert checked.returncode == 0, checked.stdout

    data = bytearray(copy.read_bytes())
    data[len(data) // 3] ^= 0x01  # one byte of the scan's image, inside the signed range
    copy.write_bytes(bytes(data))
    broken = run_digitize(["verify", str(copy)], processed["folder"])
    assert broken.returncode == 11
    assert "HỎNG / BROKEN" in broken.stdout
    assert "Signature is Valid" not in _pdfsig(copy)


def test_visible_box_sits_top_left_on_page_one_clear_of_the_text(processed, keys, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_SIGN_PASSWORD", PASSWORD)
    for name in ("colour", "low"):
        copy = _copy(processed[name], tmp_path, f"{name}.pdf")
        outcome = sign.sign_copy(copy, _settings(_p12(keys["p12"])))
        assert outcome.status == "signed" and outcome.box_clear, outcome
        with pikepdf.open(copy) as pdf:
            widget = pdf.Root.AcroForm.Fields[0]
            assert widget.P.objgen == pdf.pages[0].obj.objgen
            x0, y0, x1, y1 = (float(v) for v in widget.Rect)
            width, height = float(pdf.pages[0].mediabox[2]), float(pdf.pages[0].mediabox[3])
        assert x1 < width / 2 and y0 > height * 3 / 4  # top-left
        assert (x1 - x0) > 100 and (y1 - y0) > 25  # a box a person can read
        # The text layer's words, read from the copy before signing (pdftotext also reads the box's own words).
        html = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", processed[name]["output"], "-"],
                              capture_output=True, text=True, check=True).stdout
        words = [tuple(float(v) for v in m) for m in re.findall(
            r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)"', html)]
        assert len(words) > 20
        top, bottom = height - y1, height - y0  # the widget in pdftotext's top-down coordinates
        overlapping = [w for w in words if w[0] < x1 and w[2] > x0 and w[1] < bottom and w[3] > top]
        assert overlapping == []


def test_invisible_signature_and_the_officers_own_key(processed, keys, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_SIGN_PASSWORD", PASSWORD)
    config = {"signing": {"enabled": True, "visible": False, "kind": "pkcs12", "pkcs12": str(keys["other_p12"]),
                          "password_env": "TEST_SIGN_PASSWORD",
                          "officers": {OFFICER: {"kind": "pkcs12", "pkcs12": str(keys["p12"]),
                                                 "password_env": "TEST_SIGN_PASSWORD"}}}}
    settings = sign.settings_from(config)
    mine, office = _copy(processed["colour"], tmp_path, "mine.pdf"), _copy(processed["colour"], tmp_path, "office.pdf")
    # The inbox subfolder may come NFD from a Mac: the officer is matched in NFC.
    assert sign.sign_copy(mine, settings, __import__("unicodedata").normalize("NFD", OFFICER)).signer == OFFICER
    outcome = sign.sign_copy(office, settings, "may-quet-2")
    assert outcome.signer == "Trần Thị Bình" and outcome.box is None
    with pikepdf.open(office) as pdf:
        assert [float(v) for v in pdf.Root.AcroForm.Fields[0].Rect] == [0, 0, 0, 0]
    roots = sign.load_trust_roots([str(keys["ca_pem"])])
    assert [c.intact and c.trusted for c in sign.verify_pdf(office, roots)] == [True]
    # Nothing rewrites a signed copy: asking again changes no byte.
    before = _sha(office)
    assert sign.sign_copy(office, settings, "may-quet-2").status == "already-signed"
    assert _sha(office) == before


@pytest.mark.parametrize("problem", ["wrong password", "expired", "no password", "open password file", "no key"])
def test_a_signing_failure_leaves_the_unsigned_copy_waiting_with_the_reason(processed, keys, tmp_path, monkeypatch,
                                                                             problem):
    copy = _copy(processed["colour"], tmp_path)
    before = _sha(copy)
    monkeypatch.setenv("TEST_SIGN_PASSWORD", PASSWORD)
    spec = _p12(keys["p12"])
    if problem == "wrong password":
        monkeypatch.setenv("TEST_SIGN_PASSWORD", "sai")
        expected = "Wrong password"
    elif problem == "expired":
        spec = _p12(keys["expired_p12"])
        expected = "expired on"
    elif problem == "no password":
        monkeypatch.delenv("TEST_SIGN_PASSWORD")
        expected = "TEST_SIGN_PASSWORD"
    elif problem == "open password file":
        secret = tmp_path / "secret"
        secret.write_text(PASSWORD)
        secret.chmod(0o644)
        spec = sign.KeySpec("pkcs12", pkcs12=str(keys["p12"]), password_file=str(secret))
        expected = "readable by others"
    else:
        spec = None
        expected = "No signing key configured"
    outcome = sign.sign_copy(copy, sign.SigningSettings(enabled=True, office=spec), "Phạm Thị Dung")
    assert outcome.status == "pending"
    assert expected in outcome.reason and " / " in outcome.reason  # bilingual
    assert _sha(copy) == before and sorted(p.name for p in tmp_path.iterdir() if p.name != "secret") == ["copy.pdf"]
    assert not sign.is_signed(copy)


def test_command_line_signing_failure_exits_12_and_keeps_the_copy(processed, keys, tmp_path):
    copy = _copy(processed["colour"], tmp_path)
    before = _sha(copy)
    result = run_digitize(["sign", str(copy), "--pkcs12", str(keys["p12"]), "--password-env", "KEY_PASSWORD"],
                          processed["folder"], KEY_PASSWORD="sai")
    assert result.returncode == 12
    assert "chưa ký / not signed" in result.stdout and "Wrong password" in result.stdout
    assert _sha(copy) == before


@pytest.fixture
def timestamp_server(keys):
    """An RFC 3161 timestamp authority on the loopback interface (pyHanko's test TSA behind HTTP)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from asn1crypto import tsp
    from pyhanko.sign.timestamps import DummyTimeStamper

    authority = DummyTimeStamper(*pki.asn1_pair(pki.issue(keys["ca"], "TSA thử nghiệm", timestamping=True)))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            request = tsp.TimeStampReq.load(self.rfile.read(int(self.headers["Content-Length"])))
            body = authority.request_tsa_response(request).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_timestamp_server_makes_b_t_and_an_unreachable_one_leaves_the_copy_waiting(
        processed, keys, timestamp_server, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_SIGN_PASSWORD", PASSWORD)
    copy = _copy(processed["colour"], tmp_path)
    outcome = sign.sign_copy(copy, _settings(_p12(keys["p12"]), timestamp_url=timestamp_server))
    assert outcome.status == "signed" and outcome.level == "PAdES-B-T", outcome
    [check] = sign.verify_pdf(copy, sign.load_trust_roots([str(keys["ca_pem"])]))
    assert check.intact and check.timestamp and check.timestamp.endswith("+07:00")
    assert "Signature Validation: Signature is Valid." in _pdfsig(copy)

    waiting = _copy(processed["colour"], tmp_path, "waiting.pdf")
    before = _sha(waiting)
    closed = timestamp_server.rsplit(":", 1)[0] + ":9/"  # the discard port: nothing listens
    outcome = sign.sign_copy(waiting, _settings(_p12(keys["p12"]), timestamp_url=closed))
    assert outcome.status == "pending" and "timestamp" in outcome.reason
    assert _sha(waiting) == before


# --- PKCS#11: a software token (SoftHSM2) stands in for an officer's USB token ---
SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")


@pytest.fixture(scope="module")
def token(keys, tmp_path_factory) -> dict:
    import pkcs11
    from pkcs11 import Attribute, CertificateType, ObjectClass
    from cryptography.hazmat.primitives import serialization

    folder = tmp_path_factory.mktemp("softhsm")
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "CAN BO AN", "--pin", "123456",
                    "--so-pin", "87654321"], env=env, check=True, capture_output=True)
    key_pem = pki.write_key_pkcs8(folder / "an.key", keys["officer"])
    subprocess.run(["softhsm2-util", "--import", str(key_pem), "--token", "CAN BO AN", "--label", "an",
                    "--id", "01", "--pin", "123456"], env=env, check=True, capture_output=True)
    lib = pkcs11.lib(str(SOFTHSM))
    with lib.get_token(token_label="CAN BO AN").open(rw=True, user_pin="123456") as session:
        session.create_object({
            Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
            Attribute.TOKEN: True, Attribute.LABEL: "an", Attribute.ID: b"\x01",
            Attribute.VALUE: keys["officer"].cert.public_bytes(serialization.Encoding.DER),
            Attribute.SUBJECT: keys["officer"].cert.subject.public_bytes(),
        })
    return {"module": str(SOFTHSM)}


def test_pkcs11_token_signs_and_a_wrong_pin_or_absent_token_waits(processed, keys, token, tmp_path, monkeypatch):
    monkeypatch.setenv("TOKEN_PIN", "123456")
    spec = sign.KeySpec("pkcs11", pkcs11_module=token["module"], token_label="CAN BO AN", key_label="an",
                        password_env="TOKEN_PIN")
    copy = _copy(processed["colour"], tmp_path)
    outcome = sign.sign_copy(copy, _settings(spec))
    assert outcome.status == "signed" and outcome.signer == OFFICER, outcome
    assert "Signature Validation: Signature is Valid." in _pdfsig(copy)

    for label, pin, expected in (("CAN BO AN", "000000", "Wrong PIN"), ("TOKEN KHAC", "123456", "not found")):
        monkeypatch.setenv("TOKEN_PIN", pin)
        other = _copy(processed["colour"], tmp_path, "waiting.pdf")
        before = _sha(other)
        outcome = sign.sign_copy(other, _settings(sign.KeySpec(
            "pkcs11", pkcs11_module=token["module"], token_label=label, key_label="an", password_env="TOKEN_PIN")))
        assert outcome.status == "pending" and expected in outcome.reason
        assert _sha(other) == before


def test_copies_signed_as_they_are_made_or_waiting_until_digitize_sign_clears_them(keys, tmp_path):
    """The engine-to-catalogue path signs each copy before it is renamed into place; a wrong
    password leaves it unsigned with the reason in `status`, and `digitize sign --all` signs it
    once the password is right."""
    scan = tmp_path / "to-khai.jpg"
    page = synth.render_declaration(synth.make_fields(41), dpi=200, color=True)
    synth.write_image(scan, synth.scan(page, seed=5)["image"], dpi=200)
    home = tmp_path / "home"
    signing = {"enabled": True, "kind": "pkcs12", "pkcs12": str(keys["p12"]), "password_env": "KEY_PASSWORD"}
    config = {**site_config.load_config({"DIGITIZE_HOME": str(home)}), "signing": signing}
    os.environ["KEY_PASSWORD"] = "sai"
    try:
        conn, run = _run(home, config)
        [(_, result)] = list(jobs.process([jobs.Intake(scan, str(scan), OFFICER)], run, conn))
    finally:
        del os.environ["KEY_PASSWORD"]
    part = result.parts[0]
    assert part.signature.status == "pending" and "Wrong password" in part.signature.reason
    assert Path(part.output).is_file() and not sign.is_signed(Path(part.output))  # the scan is kept
    env = {f"DIGITIZE_SIGNING_{key.upper()}": str(value) for key, value in signing.items()}
    status = run_digitize(["status"], home, **env)
    assert re.search(r"Chờ ký số / Waiting for a signature\s+1 \(.*Wrong password", status.stdout), status.stdout

    signed = run_digitize(["sign", "--all", "--json"], home, KEY_PASSWORD=PASSWORD, **env)
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert [json.loads(line)["status"] for line in signed.stdout.splitlines()] == ["signed"]
    assert "Signature Validation: Signature is Valid." in _pdfsig(Path(part.output))
    assert re.search(r"Waiting for a signature\s+0", run_digitize(["status"], home, **env).stdout)

    config["signing"] = {**signing, "password_env": "GOOD_PASSWORD"}
    os.environ["GOOD_PASSWORD"] = PASSWORD
    try:
        scan_b = tmp_path / "to-khai-2.jpg"
        synth.write_image(scan_b, synth.scan(page, seed=6)["image"], dpi=200)
        [(_, again)] = list(jobs.process([jobs.Intake(scan_b, str(scan_b), OFFICER)], run, conn))
    finally:
        del os.environ["GOOD_PASSWORD"]
    assert again.parts[0].signature.status == "signed" and again.parts[0].signature.path == again.parts[0].output
    [check] = sign.verify_pdf(Path(again.parts[0].output), sign.load_trust_roots([str(keys["ca_pem"])]))
    assert check.intact and check.signer == OFFICER


def test_officers_keys_come_from_the_user_file_and_a_misspelt_key_is_refused(tmp_path):
    user = tmp_path / "config.toml"
    table = f'[signing.officers."{OFFICER}"]\nkind = "pkcs11"\npkcs11_module = "{SOFTHSM}"\n'
    user.write_text(f'[signing]\nenabled = true\n{table}key_label = "an"\npassword_file = "/etc/pin"\n',
                    encoding="utf-8")
    settings = sign.settings_from(site_config.load_config({"DIGITIZE_CONFIG": str(user)}))
    assert settings.enabled and settings.office is None
    assert sign.key_for(settings, OFFICER).key_label == "an" and sign.key_for(settings, "may-quet-2") is None
    user.write_text(f'{table}key_lable = "an"\n', encoding="utf-8")
    result = run_digitize(["status"], tmp_path, DIGITIZE_CONFIG=str(user))
    assert result.returncode == 9 and "key_lable" in result.stderr


def test_box_shrinks_to_fit_an_a5_top_margin_and_says_when_no_paper_is_clear():
    import numpy as np

    page = synth.render_receipt(synth.make_fields(210), dpi=100, paper="A5")
    grey = np.asarray(synth.scan(page, seed=1, noise=3.0)["image"].convert("L"))
    (left, top, right, bottom), clear = sign.find_free_box(grey, 100)
    assert clear and right - left < sign.BOX_SIZES_PT[0][0]  # the 14 mm margin takes only the smaller box
    px = [round(v * 100 / 72) for v in (left, top, right, bottom)]
    assert grey[px[1]:px[3], px[0]:px[2]].min() >= sign.INK_BELOW  # no ink under it
    assert right < grey.shape[1] * 72 / 100 / 2 and bottom < grey.shape[0] * 72 / 100 / 4
    inked = np.zeros_like(grey)
    assert sign.find_free_box(inked, 100)[1] is False


def test_a_bad_signing_section_leaves_copies_unsigned_rather_than_failing_scans(tmp_path):
    sign_copy = jobs._signer({"signing": {"enabled": True, "kind": "pkcs13"}})
    outcome = sign_copy(tmp_path / "copy.pdf", OFFICER)
    assert outcome.status == "pending" and "kind must be pkcs12 or pkcs11" in outcome.reason
    assert jobs._signer({"signing": {"enabled": False, "kind": "pkcs13"}}) is None
