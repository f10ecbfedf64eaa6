"""The digitising officer's digital signature on each copy (PAdES), and checking it.

Circular 01/2023/TT-VPCP Art. 8: the officer who digitises signs each
electronic copy before its data is used, with the signer's name and the time
at the top-left of page 1. Invariants:
- A signature covers the final bytes: sign after OCR and assembly, and nothing
  rewrites a signed file afterwards (signing an already signed copy is a no-op;
  reprocessing makes a new file, signed anew).
- Signing is atomic: the signed file is written beside the copy, fsynced and
  renamed over it. A failure (no key, wrong password or PIN, token absent,
  certificate expired, timestamp server down) leaves the unsigned copy as it
  was: `sign_copy` then returns status "pending" with the reason, never raises.
- PAdES B-B offline by default; B-T when a timestamp server is configured.
- The visible box goes where page 1 has no ink, as near its top-left corner
  as it fits (the top margin of an official paper, in practice), so it hides
  neither text nor the QR code printed top-left (Art. 26).
"""
from __future__ import annotations

import logging
import os
import stat
import tempfile
import unicodedata
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pikepdf
from asn1crypto import pem, x509 as asn1_x509
from fontTools.ttLib import TTFont
from fontTools.ttLib.scaleUpem import scale_upem
from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import AxisAlignment, InnerScaling, Margins, SimpleBoxLayoutRule
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.general import SigningError as HankoSigningError
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext

from . import errors, programs
from .assemble import VIETNAM
from .files import write_atomic
from .fonts import font_path
from .models import SignOutcome

FIELD_NAME = "BanSaoDienTu"
# fontTools warns on stderr about font tables it drops from the box's font subset (harmless).
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
COPY_LABEL = "Bản sao điện tử / Electronic copy"
STAMP_TEXT = "%(signer)s\n%(ts)s\n" + COPY_LABEL
# pyHanko formats the signing time with this before our style turns it to +07:00 (exact, not re-read).
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
MM = 72.0 / 25.4
STAMP_PT = 7
# Three lines of 7 pt (name, time, "electronic copy"); where that finds no clear paper (the
# 14 mm top margin of an A5 sheet), the smaller box draws them at 5.7 pt.
BOX_SIZES_PT = ((42 * MM, 11 * MM), (34 * MM, 9 * MM))
EDGE_PT = 3 * MM  # never closer to the paper's edge than this
CLEARANCE_PT = 1.5 * MM  # free paper kept around the box
SEARCH_PT = 1 * MM  # positions tried this far apart
RENDER_DPI = 100
RENDER_TIMEOUT = 120.0  # seconds for pdftoppm to draw page 1
INK_BELOW = 192  # grey level under which a rendered pixel is ink (paper tint is ~245)


class SigningError(errors.DigitizeError):
    """Why a copy could not be signed now; the copy itself is untouched and waits."""

    exit_code = errors.SIGNING_FAILED
    advice_vi = "Bản quét chưa ký vẫn được giữ nguyên; sửa lỗi rồi chạy 'digitize sign' để ký."
    advice_en = "The unsigned copy is kept as it is; fix the problem, then run 'digitize sign'."


@dataclass(frozen=True)
class KeySpec:
    """Where one signing key lives: a PKCS#12 file or a PKCS#11 token, and where its secret is."""

    kind: str  # "pkcs12" or "pkcs11"
    pkcs12: str = ""
    pkcs11_module: str = ""
    token_label: str = ""
    key_label: str = ""
    cert_label: str = ""
    password_env: str = ""  # name of the environment variable holding the password or PIN
    password_file: str = ""  # a file readable by the service only (mode 0600 or 0400)


@dataclass(frozen=True)
class SigningSettings:
    enabled: bool = False
    office: KeySpec | None = None
    officers: dict[str, KeySpec] = field(default_factory=dict)  # NFC officer name -> key
    visible: bool = True
    timestamp_url: str = ""
    trust_roots: tuple[str, ...] = ()
    reason: str = COPY_LABEL
    location: str = ""


def _key_spec(section: dict, where: str) -> KeySpec | None:
    kind = str(section.get("kind", "") or "").strip().lower()
    if not kind:
        return None
    if kind not in ("pkcs12", "pkcs11"):
        raise errors.ConfigError(f"[{where}] kind phải là pkcs12 hoặc pkcs11 (đang là '{kind}').",
                                 f"[{where}] kind must be pkcs12 or pkcs11 (is '{kind}').")
    names = ("pkcs12", "pkcs11_module", "token_label", "key_label", "cert_label", "password_env", "password_file")
    spec = KeySpec(kind, **{name: str(section.get(name, "") or "") for name in names})
    needed = ("pkcs12",) if kind == "pkcs12" else ("pkcs11_module",)
    for name in needed:
        if not getattr(spec, name):
            raise errors.ConfigError(f"[{where}] thiếu {name}.", f"[{where}] needs {name}.")
    if kind == "pkcs11" and not (spec.key_label or spec.cert_label):
        raise errors.ConfigError(f"[{where}] cần key_label hoặc cert_label.", f"[{where}] needs key_label or cert_label.")
    return spec


def settings_from(config: dict) -> SigningSettings:
    """The [signing] section, checked; [signing.officers."NAME"] tables give officers their own key."""
    section = config.get("signing", {})
    officers = {unicodedata.normalize("NFC", name): spec
                for name, table in (section.get("officers") or {}).items()
                if (spec := _key_spec(table, f'signing.officers."{name}"')) is not None}
    roots = section.get("trust_roots") or []
    return SigningSettings(
        enabled=bool(section.get("enabled", False)),
        office=_key_spec(section, "signing"),
        officers=officers,
        visible=bool(section.get("visible", True)),
        timestamp_url=str(section.get("timestamp_url", "") or ""),
        trust_roots=tuple(str(Path(root).expanduser()) for root in ([roots] if isinstance(roots, str) else roots)),
        reason=str(section.get("reason", COPY_LABEL) or COPY_LABEL),
        location=str(section.get("location", "") or ""),
    )


def key_for(settings: SigningSettings, officer: str | None) -> KeySpec | None:
    """The officer's own key when configured (the inbox subfolder names the officer), else the office's."""
    if officer:
        own = settings.officers.get(unicodedata.normalize("NFC", officer))
        if own is not None:
            return own
    return settings.office


def with_command_line(settings: SigningSettings, args) -> SigningSettings:
    """`digitize sign` options over the configuration: a key given on the command line signs
    everything asked for; --invisible and --timestamp-url override their settings."""
    spec = None
    if args.pkcs12 or args.pkcs11_module:
        spec = _key_spec({"kind": "pkcs12" if args.pkcs12 else "pkcs11", "pkcs12": args.pkcs12,
                          "pkcs11_module": args.pkcs11_module, "token_label": args.token_label,
                          "key_label": args.key_label, "password_env": args.password_env,
                          "password_file": args.password_file}, "--pkcs12/--pkcs11-module")
    return replace(settings, office=spec or settings.office, officers={} if spec else settings.officers,
                   visible=settings.visible and not args.invisible,
                   timestamp_url=args.timestamp_url or settings.timestamp_url)


# --- secrets and keys ---
def read_secret(spec: KeySpec) -> str:
    """The password or PIN: from the environment variable, else the service-only file."""
    if spec.password_env:
        value = os.environ.get(spec.password_env)
        if value is not None:
            return value
        if not spec.password_file:
            raise SigningError(f"Biến môi trường {spec.password_env} (mật khẩu/PIN khóa ký) chưa được đặt.",
                               f"The environment variable {spec.password_env} (key password/PIN) is not set.")
    if not spec.password_file:
        raise SigningError("Chưa cấu hình nơi lấy mật khẩu/PIN khóa ký (password_env hoặc password_file).",
                           "No password/PIN source configured for the key (password_env or password_file).")
    path = Path(spec.password_file).expanduser()
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SigningError(
                f"Tệp mật khẩu {path} để người khác đọc được (quyền {stat.filemode(mode)}); đặt chmod 600.",
                f"The password file {path} is readable by others ({stat.filemode(mode)}); chmod 600 it.")
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise SigningError(f"Không đọc được tệp mật khẩu {path}.",
                           f"Cannot read the password file {path} ({exc.strerror}).") from exc


def _check_validity(cert: asn1_x509.Certificate, now: datetime) -> None:
    validity = cert["tbs_certificate"]["validity"]
    start, end = validity["not_before"].native, validity["not_after"].native
    subject = cert.subject.human_friendly
    if now > end:
        raise SigningError(f"Chứng thư số của {subject} đã hết hạn ngày {end.astimezone(VIETNAM):%d/%m/%Y}.",
                           f"The certificate of {subject} expired on {end.astimezone(VIETNAM).date()}.",
                           "Gia hạn chứng thư số với nhà cung cấp dịch vụ chứng thực rồi ký lại.",
                           "Renew the certificate with the CA, then sign again.")
    if now < start:
        raise SigningError(f"Chứng thư số của {subject} chưa có hiệu lực (từ {start.astimezone(VIETNAM):%d/%m/%Y}).",
                           f"The certificate of {subject} is not valid before {start.astimezone(VIETNAM).date()}.")


class _Token:
    """An open signer and whatever must be closed after it (a PKCS#11 session)."""

    def __init__(self, spec: KeySpec):
        self.spec = spec
        self.session = None
        self.signer: signers.Signer | None = None

    def __enter__(self) -> signers.Signer:
        secret = read_secret(self.spec)
        if self.spec.kind == "pkcs12":
            path = Path(self.spec.pkcs12).expanduser()
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise SigningError(f"Không đọc được tệp khóa {path}.",
                                   f"Cannot read the key file {path} ({exc.strerror}).") from exc
            try:
                self.signer = signers.SimpleSigner.load_pkcs12_data(data, (), passphrase=secret.encode())
            except ValueError as exc:
                raise SigningError(f"Sai mật khẩu hoặc tệp khóa {path.name} hỏng.",
                                   f"Wrong password, or the key file {path.name} is damaged.") from exc
        else:
            self.signer = self._open_pkcs11(secret)
        return self.signer

    def _open_pkcs11(self, pin: str) -> signers.Signer:
        import pkcs11  # imported here: only sites with a token need the PKCS#11 library loaded
        from pyhanko.config.pkcs11 import TokenCriteria
        from pyhanko.sign.pkcs11 import PKCS11Signer, open_pkcs11_session

        spec = self.spec
        label = spec.token_label or None
        try:
            self.session = open_pkcs11_session(spec.pkcs11_module, token_criteria=TokenCriteria(label=label),
                                               user_pin=pin)
        except pkcs11.exceptions.PinIncorrect as exc:
            raise SigningError("Sai mã PIN của thiết bị ký số (USB token).", "Wrong PIN for the signing token.",
                               "Nhập lại PIN đúng; nhập sai nhiều lần sẽ khóa token.",
                               "Set the right PIN; repeated wrong PINs lock the token.") from exc
        except pkcs11.exceptions.PinLocked as exc:
            raise SigningError("Thiết bị ký số bị khóa PIN.", "The signing token's PIN is locked.") from exc
        except (pkcs11.exceptions.PKCS11Error, RuntimeError, OSError) as exc:
            raise SigningError(f"Không thấy thiết bị ký số (USB token) {spec.token_label}: hãy cắm token.",
                               f"Signing token {spec.token_label or ''} not found ({exc or type(exc).__name__}): "
                               "plug it in.") from exc
        try:
            return PKCS11Signer(self.session, cert_label=spec.cert_label or spec.key_label,
                                key_label=spec.key_label or spec.cert_label)
        except (pkcs11.exceptions.PKCS11Error, HankoSigningError) as exc:
            raise SigningError("Không tìm thấy khóa hoặc chứng thư trên thiết bị ký số.",
                               f"Key or certificate not found on the token ({exc}).") from exc

    def __exit__(self, *_exc) -> None:
        if self.session is not None:
            self.session.close()


# --- where the visible box goes ---
def render_first_page(path: Path, dpi: int = RENDER_DPI) -> np.ndarray:
    """Page 1 as a grey array at `dpi`, rendered by poppler (what a viewer shows)."""
    return np.asarray(programs.render_pdf_page(str(path), 0, dpi, RENDER_TIMEOUT).convert("L"))


def find_free_box(grey: np.ndarray, dpi: float, sizes: tuple[tuple[float, float], ...] = BOX_SIZES_PT
                  ) -> tuple[tuple[float, float, float, float], bool]:
    """The box (left, top, right, bottom in points from the top-left corner) nearest the top-left
    corner of the page that covers no ink, with CLEARANCE_PT of paper around it, in the first of
    `sizes` that fits somewhere in the top-left quarter; and whether one was found (else the
    position of the first size with the least ink)."""
    scale = dpi / 72.0
    ink = (grey < INK_BELOW).astype(np.uint8)
    grow = max(1, round(CLEARANCE_PT * scale))
    sums = cv2.integral(cv2.dilate(ink, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)))
    fallback = None
    for size in sizes:
        (x, y), covered = _least_ink(sums, round(size[0] * scale), round(size[1] * scale), scale)
        box = (x / scale, y / scale, x / scale + size[0], y / scale + size[1])
        if covered == 0:
            return box, True
        fallback = fallback or box
    return fallback, False


def _least_ink(sums: np.ndarray, w: int, h: int, scale: float) -> tuple[tuple[int, int], int]:
    """The position of a w×h box in the top-left quarter nearest the corner with no ink under it
    (else the one with the least), and how much ink it covers; `sums` is the integral image."""
    height, width = sums.shape[0] - 1, sums.shape[1] - 1
    edge, step = round(EDGE_PT * scale), max(1, round(SEARCH_PT * scale))
    best, best_ink = (edge, edge), None
    ys = range(edge, max(edge + 1, height // 4 - h), step)
    xs = range(edge, max(edge + 1, width // 2 - w), step)
    for x, y in sorted(((x, y) for y in ys for x in xs), key=lambda p: (p[0] + p[1], p[1])):
        if x + w > width or y + h > height:
            continue
        covered = int(sums[y + h, x + w] - sums[y, x + w] - sums[y + h, x] + sums[y, x])
        if covered == 0:
            return (x, y), 0
        if best_ink is None or covered < best_ink:
            best, best_ink = (x, y), covered
    return best, best_ink if best_ink is not None else 1


@lru_cache(maxsize=1)
def stamp_font() -> str:
    """Liberation Sans (Vietnamese glyphs) scaled to 1000 units per em.

    pyHanko writes a CID font's glyph widths in font units as if every font had
    1000 to the em; Liberation has 2048, so viewers spaced the box's letters
    twice too wide. The scaled copy is kept per user in the temp folder.
    """
    source = font_path("regular", "Sans")
    target = Path(tempfile.gettempdir()) / f"digitize-{os.getuid()}-{source.stem}-upem1000.ttf"
    if not target.exists():
        font = TTFont(source)
        if font["head"].unitsPerEm != 1000:
            scale_upem(font, 1000)
        write_atomic(target, lambda temp: font.save(temp))
    return str(target)


def _layout(margins: Margins) -> SimpleBoxLayoutRule:
    # Shrink-to-fit: a long name is drawn smaller, never cut off.
    return SimpleBoxLayoutRule(x_align=AxisAlignment.ALIGN_MIN, y_align=AxisAlignment.ALIGN_MID, margins=margins,
                               inner_content_scaling=InnerScaling.SHRINK_TO_FIT)


def _stamp_style() -> TextStampStyle:
    return _CopyStampStyle(
        stamp_text=STAMP_TEXT, timestamp_format=_TS_FORMAT, border_width=1, background=None,
        text_box_style=TextBoxStyle(font=GlyphAccumulatorFactory(stamp_font(),
                                                                 font_size=STAMP_PT, create_objstream_if_needed=False),
                                    font_size=STAMP_PT, leading=STAMP_PT + 2,
                                    box_layout_rule=_layout(Margins.uniform(0))),
        inner_content_layout=_layout(Margins(left=5, right=3, top=3, bottom=3)),
    )


@dataclass(frozen=True)
class _CopyStampStyle(TextStampStyle):
    """pyHanko's text stamp, with the signing time it passes shown in +07:00."""

    def create_stamp(self, writer, box, text_params):
        moment = datetime.strptime(text_params["ts"], _TS_FORMAT).astimezone(VIETNAM)
        return super().create_stamp(writer, box, {**text_params, "ts": moment.isoformat(timespec="seconds")})


# --- signing ---
def is_signed(path: Path) -> bool:
    """Whether the PDF already carries a filled signature field."""
    with pikepdf.open(path) as pdf:
        form = pdf.Root.get("/AcroForm")
        return form is not None and any(
            field_.get("/FT") == pikepdf.Name.Sig and "/V" in field_ for field_ in form.get("/Fields", []))


def signer_name(cert: asn1_x509.Certificate) -> str:
    """The common name of a certificate's subject (the officer's name), else the whole subject."""
    return cert.subject.native.get("common_name") or cert.subject.human_friendly


def _placement(path: Path, visible: bool) -> tuple[tuple[float, float, float, float] | None, bool | None]:
    """The widget rectangle in PDF coordinates on page 1 (None: invisible), and whether it is on clear paper."""
    if not visible:
        return None, None
    with pikepdf.open(path) as pdf:
        x0, y0, x1, y1 = (float(v) for v in pdf.pages[0].mediabox)
    (left, top, right, bottom), clear = find_free_box(render_first_page(path), RENDER_DPI)
    return (x0 + left, y1 - bottom, x0 + right, y1 - top), clear


def sign_pdf(path: Path, spec: KeySpec, settings: SigningSettings) -> SignOutcome:
    """Sign the PDF at `path` in place (a new file renamed over it); SigningError when it cannot be."""
    path = Path(path)
    box, clear = _placement(path, settings.visible)
    with _Token(spec) as signer:
        now = datetime.now(VIETNAM)
        _check_validity(signer.signing_cert, now)
        name = signer_name(signer.signing_cert)
        meta = signers.PdfSignatureMetadata(
            field_name=FIELD_NAME, md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES,
            reason=settings.reason, location=settings.location or None, name=name,
        )
        timestamper = timestamps.HTTPTimeStamper(settings.timestamp_url) if settings.timestamp_url else None
        pdf_signer = signers.PdfSigner(
            meta, signer, timestamper=timestamper, stamp_style=_stamp_style(),
            new_field_spec=fields.SigFieldSpec(FIELD_NAME, on_page=0, box=box),
        )

        def write(temp: Path) -> None:
            with path.open("rb") as source, temp.open("wb") as out:
                pdf_signer.sign_pdf(IncrementalPdfFileWriter(source, strict=False), output=out)

        try:
            write_atomic(path, write)
        except timestamps.TimestampRequestError as exc:
            raise SigningError(f"Không lấy được dấu thời gian từ máy chủ {settings.timestamp_url}.",
                               f"Could not get a timestamp from {settings.timestamp_url} ({exc}).",
                               "Kiểm tra kết nối mạng tới máy chủ cấp dấu thời gian.",
                               "Check the network path to the timestamp server.") from exc
        except HankoSigningError as exc:
            raise SigningError("Không ký được bản sao.", f"Could not sign the copy ({exc}).") from exc
        except OSError as exc:
            raise SigningError("Không ghi được bản sao đã ký (đĩa đầy hoặc không có quyền ghi).",
                               f"Could not write the signed copy ({exc}).") from exc
    signed_at = _signature_times(path).get(FIELD_NAME)
    return SignOutcome(str(path), "signed", name, signed_at, "PAdES-B-T" if timestamper else "PAdES-B-B",
                       box, clear)


def _signature_times(path: Path) -> dict[str, str]:
    with path.open("rb") as handle:
        reader = PdfFileReader(handle, strict=False)
        return {sig.field_name: sig.self_reported_timestamp.astimezone(VIETNAM).isoformat(timespec="seconds")
                for sig in reader.embedded_signatures if sig.self_reported_timestamp}


def sign_copy(path: Path, settings: SigningSettings, officer: str | None = None) -> SignOutcome:
    """Sign one digitised copy with the officer's (else the office's) key. Never raises for a key,
    token, certificate or timestamp problem: the copy stays unsigned and the outcome says why."""
    path = Path(path)
    try:
        if is_signed(path):
            return SignOutcome(str(path), "already-signed")
        spec = key_for(settings, officer)
        if spec is None:
            raise SigningError(f"Chưa cấu hình khóa ký cho cán bộ '{officer or ''}' hay cho cơ quan.",
                               f"No signing key configured for officer '{officer or ''}' or for the office.",
                               "Khai báo khóa trong mục [signing] của tệp cấu hình.",
                               "Configure a key in the [signing] section of the configuration.")
        return sign_pdf(path, spec, settings)
    except errors.DigitizeError as exc:  # SigningError, or pdftoppm failing on the page
        return SignOutcome(str(path), "pending", reason=exc.one_line())
    except (pikepdf.PdfError, OSError) as exc:
        return SignOutcome(str(path), "pending",
                           reason=f"Không đọc được tệp PDF để ký. / Cannot read the PDF to sign it ({exc}).")


# --- verifying ---
@dataclass(frozen=True)
class SignatureCheck:
    """One signature of a file as `digitize verify` reports it."""

    field: str
    intact: bool  # the signed bytes are unchanged, the signature is mathematically valid, nothing added after
    signer: str | None
    signed_at: str | None  # the signer's clock, +07:00
    timestamp: str | None  # a timestamp authority's time (PAdES B-T), +07:00
    trusted: bool  # the certificate chains to the configured trust list
    problem: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def load_trust_roots(paths: tuple[str, ...] | list[str]) -> list[asn1_x509.Certificate]:
    """CA certificates (PEM or DER, one file each or a folder of them)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        files.extend(sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path])
    roots = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise errors.ConfigError(f"Không đọc được chứng thư gốc {path}.",
                                     f"Cannot read the trust root {path} ({exc.strerror}).") from exc
        blobs = [der for _, _, der in pem.unarmor(data, multiple=True)] if pem.detect(data) else [data]
        try:
            roots.extend(asn1_x509.Certificate.load(blob) for blob in blobs)
        except ValueError as exc:
            raise errors.ConfigError(f"Tệp {path} không phải chứng thư số.",
                                     f"{path} is not a certificate.") from exc
    return roots


def verify_pdf(path: Path, trust_roots: list[asn1_x509.Certificate]) -> list[SignatureCheck]:
    """Every signature of the PDF, checked offline. A file that cannot be parsed reports one broken entry."""
    checks = []
    try:
        with Path(path).open("rb") as handle:
            reader = PdfFileReader(handle, strict=False)
            for embedded in reader.embedded_signatures:
                context = ValidationContext(trust_roots=trust_roots, allow_fetching=False,
                                            revocation_mode="soft-fail")
                checks.append(_check_one(embedded, context))
    except Exception as exc:  # a damaged file is the very case verify exists for: report, never crash
        checks.append(SignatureCheck("?", False, None, None, None, False,
                                     f"Tệp hỏng / damaged file: {type(exc).__name__}: {exc}"))
    return checks


def _check_one(embedded, context: ValidationContext) -> SignatureCheck:
    try:
        status = validate_pdf_signature(embedded, context)
    except Exception as exc:  # a mangled signature container: broken, with the reason
        return SignatureCheck(embedded.field_name, False, None, None, None, False,
                              f"{type(exc).__name__}: {exc}")
    whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    intact = bool(status.intact and status.valid and (whole or status.docmdp_ok))
    problem = None
    if not status.intact:
        problem = "nội dung đã bị sửa sau khi ký / the signed bytes were changed"
    elif not status.valid:
        problem = "chữ ký không hợp lệ / the signature does not match"
    elif not intact:
        problem = "tệp bị thêm nội dung sau khi ký / content was added after signing"
    stamped = status.timestamp_validity.timestamp if status.timestamp_validity else None
    reported = status.signer_reported_dt
    return SignatureCheck(
        field=embedded.field_name, intact=intact, signer=signer_name(status.signing_cert),
        signed_at=reported.astimezone(VIETNAM).isoformat(timespec="seconds") if reported else None,
        timestamp=stamped.astimezone(VIETNAM).isoformat(timespec="seconds") if stamped else None,
        trusted=bool(status.trusted), problem=problem,
    )
