"""Options every way of serving the app gives uvicorn (``gis-service serve``, the tests)."""

from __future__ import annotations

from typing import Any

from gis_service.config import Settings


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
        # configure_logging (http/observability) sends uvicorn's loggers through its own
        # redacting handler; uvicorn's access lines carry query strings (?api_key=…), so they
        # stay off: the request log names route templates instead.
        "log_config": None,
        "access_log": False,
        "log_level": settings.log_level,
    }
