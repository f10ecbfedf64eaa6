"""People who use the web page: names, roles, Argon2 password hashes.

Roles: officer (reviews and links), supervisor (reads everything, changes
nothing), admin (also imports registries and manages users). The command
line (`digitize user ...`) and the admin's web page both go through here, and
every change leaves an audit entry.
"""
from __future__ import annotations

import sqlite3
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from . import errors, store

ROLES = ("officer", "supervisor", "admin")
MIN_PASSWORD = 8
MAX_NAME = 64
_HASHER = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


class AccountError(errors.DigitizeError):
    exit_code = errors.BAD_ARGS


def check_name(name: str) -> str:
    """A user name: 1-64 printable characters (Vietnamese letters welcome), NFC, no surrounding spaces."""
    name = unicodedata.normalize("NFC", name).strip()
    if not name or len(name) > MAX_NAME or any(unicodedata.category(c).startswith("C") for c in name):
        raise AccountError("Tên người dùng phải có 1–64 ký tự in được.",
                           "A user name must be 1-64 printable characters.")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"Vai trò không hợp lệ: {role}", f"Unknown role: {role}",
                           "Chọn officer, supervisor hoặc admin.", "Choose officer, supervisor or admin.")
    return role


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"Mật khẩu phải có ít nhất {MIN_PASSWORD} ký tự.",
                           f"A password must have at least {MIN_PASSWORD} characters.")
    return _HASHER.hash(password)


def verify(conn: sqlite3.Connection, name: str, password: str) -> dict | None:
    """The user when the name exists, is enabled and the password is right; otherwise None."""
    user = store.get_user(conn, unicodedata.normalize("NFC", name).strip(), with_hash=True)
    try:
        _HASHER.verify(user["password_hash"] if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user["disabled"]:
        return None
    if _HASHER.check_needs_rehash(user["password_hash"]):
        store.update_user(conn, name, password_hash=_HASHER.hash(password))
    return {k: v for k, v in user.items() if k != "password_hash"}


def _missing(name: str) -> AccountError:
    return AccountError(f"Không có người dùng {name}.", f"No user {name}.")


def add(conn: sqlite3.Connection, name: str, role: str, password: str, actor: str) -> None:
    name, role = check_name(name), check_role(role)
    with store.transaction(conn):
        if not store.add_user(conn, name, role, hash_password(password)):
            raise AccountError(f"Người dùng {name} đã có.", f"User {name} already exists.")
        store.add_audit(conn, actor, "user_add", detail={"user": name, "role": role})


def disable(conn: sqlite3.Connection, name: str, actor: str) -> None:
    if not store.update_user(conn, name, disabled=True):
        raise _missing(name)
    store.add_audit(conn, actor, "user_disable", detail={"user": name})


def set_password(conn: sqlite3.Connection, name: str, password: str, actor: str) -> None:
    if not store.update_user(conn, name, password_hash=hash_password(password)):
        raise _missing(name)
    store.add_audit(conn, actor, "user_passwd", detail={"user": name})
