"""argon2id password hashing (argon2-cffi), with a constant-time miss for unknown users."""

from __future__ import annotations

import re
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gis_service.config import Settings

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256  # argon2 takes any length; the cap bounds the work of one request
# The strength rule, the one check password_problem applies and the pattern the document
# states (issue 11, finding 12): something not blank and at least four different
# characters, no NUL. Written as "a first character, then the first one unlike it, then
# the first unlike both, then one unlike all three", so that each step is taken at most
# once: linear time (a "four characters anywhere" pattern backtracks in O(n⁴)).
PASSWORD_PATTERN = (
    r"^(?=[^\x00]*$)(?=[\s\S]*\S)([\s\S])\1*(?!\1)([\s\S])(?:\1|\2)*"
    r"(?!\1|\2)([\s\S])(?:\1|\2|\3)*(?!\1|\2|\3)[\s\S]"
)
_STRONG_ENOUGH = re.compile(PASSWORD_PATTERN)


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    """argon2id with the cost of GIS_PASSWORD_TIME_COST, _MEMORY_KIB and _PARALLELISM."""
    settings = Settings()
    return PasswordHasher(
        time_cost=settings.password_time_cost,
        memory_cost=max(settings.password_memory_kib, 8 * settings.password_parallelism),
        parallelism=settings.password_parallelism,
    )


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (salted; the parameters are inside the string)."""
    return _hasher().hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash("not-a-real-password-for-timing")


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; an unknown user (None) costs the same time."""
    try:
        return _hasher().verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    try:
        return _hasher().check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def password_problem(password: str) -> str | None:
    """Why ``password`` is unacceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"The password must have at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"The password may have at most {MAX_PASSWORD_LENGTH} characters."
    if "\x00" in password:
        return "The password must not contain a NUL character."
    if not _STRONG_ENOUGH.search(password):
        return "The password is too simple: use at least four different characters."
    return None


# No 0/O, 1/l/I: a temporary password is read out over the phone or copied from a screen.
_TEMPORARY_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def temporary_password() -> str:
    """A random password to hand to a user once (about 71 bits), e.g. ``k3Fq-9xTz-Mw2p``."""
    chars = "".join(secrets.choice(_TEMPORARY_ALPHABET) for _ in range(12))
    return "-".join(chars[i : i + 4] for i in range(0, 12, 4))
