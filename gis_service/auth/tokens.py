"""Random secrets for sessions, bearer tokens and API keys, and their stored digests.

The secrets are 256 random bits, so a plain SHA-256 digest is safe to store: there is
nothing to brute-force, unlike a password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SESSION_PREFIX = "gss"
BEARER_PREFIX = "gst"
API_KEY_PREFIX = "gsk"
MAX_SECRET_LENGTH = 200  # longer credentials are refused before any hashing or lookup


def new_secret(kind_prefix: str) -> str:
    """A fresh secret such as ``gst_…`` (the prefix tells a leaked string's kind)."""
    return f"{kind_prefix}_{secrets.token_urlsafe(32)}"


def new_api_key() -> tuple[str, str]:
    """A fresh API key and its public prefix (shown in lists to tell keys apart)."""
    prefix = f"{API_KEY_PREFIX}_{secrets.token_hex(4)}"
    return f"{prefix}_{secrets.token_urlsafe(32)}", prefix


def digest(secret: str) -> bytes:
    """The SHA-256 digest stored instead of ``secret``."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two strings."""
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )
