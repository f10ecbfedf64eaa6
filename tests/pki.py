"""A throw-away PKI for the signing tests: a root CA, officers' certificates and their keys.

Made with `cryptography` (pyHanko's own dependency) at test time, offline; nothing is committed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Issued:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "UBND xã Tân Phú (test)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str = "Test Root CA") -> Issued:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=True, crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Issued(key, cert)


def issue(ca: Issued, common_name: str, valid_from: datetime | None = None, days: int = 365,
          timestamping: bool = False) -> Issued:
    """An officer's signing certificate (non-repudiation, as PAdES wants), issued by `ca`;
    with `timestamping`, a timestamp authority's instead."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = valid_from or datetime.now(timezone.utc) - timedelta(days=1)
    builder = x509.CertificateBuilder()
    if timestamping:
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]),
                                        critical=True)
    cert = (builder.subject_name(_name(common_name)).issuer_name(ca.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=False, crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                           critical=False)
            .sign(ca.key, hashes.SHA256()))
    return Issued(key, cert)


def write_pkcs12(path: Path, signer: Issued, ca: Issued, password: str) -> Path:
    data = pkcs12.serialize_key_and_certificates(
        b"officer", signer.key, signer.cert, [ca.cert],
        serialization.BestAvailableEncryption(password.encode()))
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def write_cert_pem(path: Path, issued: Issued) -> Path:
    path.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
    return path


def write_key_pkcs8(path: Path, issued: Issued) -> Path:
    path.write_bytes(issued.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    path.chmod(0o600)
    return path


def asn1_pair(issued: Issued):
    """The certificate and key as asn1crypto objects (what pyHanko's test timestamper takes)."""
    from asn1crypto import keys, x509 as asn1_x509

    der_key = issued.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    return (asn1_x509.Certificate.load(issued.cert.public_bytes(serialization.Encoding.DER)),
            keys.PrivateKeyInfo.load(der_key))
