"""Domain errors: what went wrong, in words the client can act on, with no HTTP in them.

Services raise these; ``gis_service.http.errors`` holds the one table that turns each class
into a status code and the JSON body ``{code, message, details}``. ``code`` defaults to the
class's own and may be made more specific (``Conflict(..., code="move_not_allowed")``).
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """An error the client can act on; ``message`` says what to fix."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details


class BadRequest(DomainError):
    """The request cannot be understood (unknown parameter, bad syntax)."""

    code = "bad_request"


class Unauthorized(DomainError):
    """No valid credentials: log in, or send a token or key.

    ``challenge`` is False where the credentials were checked and refused (a wrong password),
    so no new challenge is issued.
    """

    code = "unauthorized"

    def __init__(
        self, message: str, *, code: str | None = None, challenge: bool = True, **details: Any
    ) -> None:
        super().__init__(message, code=code, **details)
        self.challenge = challenge


class Forbidden(DomainError):
    """Authenticated, but the role, scope or grid subtree does not allow this."""

    code = "forbidden"


class NotFound(DomainError):
    """No such object (or a private one outside the caller's scope)."""

    code = "not_found"


class Conflict(DomainError):
    """The object's state does not allow this now (a move, a taken name, a closed window)."""

    code = "conflict"


class StaleVersion(DomainError):
    """The object changed since the client read it: reload and decide again."""

    code = "version_mismatch"

    def __init__(self, message: str, *, version: int, **details: Any) -> None:
        super().__init__(message, version=version, **details)
        self.version = version

    @property
    def etag(self) -> str:
        """The current version as an entity tag (strong: it names exactly one state)."""
        return f'"{self.version}"'


class PayloadTooLarge(DomainError):
    """A body, file or photo is larger than accepted."""

    code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    """The body or a file is of a type this endpoint does not take."""

    code = "unsupported_media_type"


class Invalid(DomainError):
    """Well-formed but unacceptable input."""

    code = "invalid_parameter"


class Locked(DomainError):
    """The object is locked for a while (an account after too many failed logins)."""

    code = "locked"

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: float | None = None, **d: Any
    ) -> None:
        super().__init__(message, code=code, **d)
        self.retry_after = None if retry_after is None else max(1, int(retry_after))


class PreconditionRequired(DomainError):
    """A write that must say which version it changes did not."""

    code = "precondition_required"


class TooMany(DomainError):
    """Too many requests: wait ``retry_after`` seconds (whole, at least 1)."""

    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: float, **details: Any) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(message, **details, retry_after=seconds)
        self.retry_after = seconds


class TooLong(DomainError):
    """The request needed more database time than the statement timeout allows: not an
    outage, a request to narrow (a shorter period, a smaller area, fewer points)."""

    code = "statement_timeout"
