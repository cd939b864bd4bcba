"""Options every way of serving the app gives uvicorn (``gis-service serve``, the tests)."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from gis_service.config import Settings
from gis_service.hazards.receipts import TOKEN_PREFIX as RECEIPT_PREFIX
from gis_service.http.deps import GLOBAL_QUERY_PARAMS

# A credential in a request line: a query parameter that carries a key (?api_key=), or a
# receipt's capability token in its path (/receipts/rc_…).
_SECRETS = re.compile(
    r"(?P<keep>[?&](?:"
    + "|".join(re.escape(n).replace("_", "(?:_|%5[Ff])") for n in sorted(GLOBAL_QUERY_PARAMS))
    + r")=)"
    r"[^&#\s\"]*"
    r"|(?P<receipt>/receipts/" + re.escape(RECEIPT_PREFIX) + r")[A-Za-z0-9_-]+"
)


def redact(text: str) -> str:
    """The text with the values of credentials in URLs replaced by ``[redacted]``."""
    return _SECRETS.sub(lambda m: (m["keep"] or m["receipt"]) + "[redacted]", text)


class RedactSecrets(logging.Filter):
    """Keeps credentials out of the access log (an ?api_key= there is a key anyone reading
    the log could use; issue 11, finding 10)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact every string argument of the record; never drops a record."""
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with the access log's credentials redacted."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": RedactSecrets}
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_secrets"]
    return config


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings that are ours to decide.

    uvicorn rewrites the client address from X-Forwarded-For when the peer is one of
    ``forwarded_allow_ips`` (by default 127.0.0.1): behind no proxy at all, anyone on the
    machine, or any request relayed through it, could then pick the address that the
    per-address limits count (12 of 12 spoofed anonymous reports accepted). Only
    GIS_TRUSTED_PROXIES decides whom to believe (gis_service.auth.deps.client_ip), so
    uvicorn's own handling is off.
    """
    return {
        "proxy_headers": False,
        "forwarded_allow_ips": "",
        "server_header": False,  # no "server: uvicorn" on every response
        "log_config": log_config(),
        "log_level": settings.log_level,
    }
