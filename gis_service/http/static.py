"""Static files with caching headers, optionally limited to listed folders."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope


class CachedStaticFiles(StaticFiles):
    """StaticFiles that adds Cache-Control, and (with ``allow``) serves only listed folders."""

    def __init__(
        self, *, directory: Path, cache_control: str, allow: tuple[str, ...] | None = None
    ) -> None:
        super().__init__(directory=directory, check_dir=False)
        self.cache_control = cache_control
        self.allow = allow

    async def check_config(self) -> None:
        """No folder yet (``npm ci`` not run): answer 404s instead of failing."""
        if Path(self.directory or "").is_dir():
            await super().check_config()

    async def get_response(self, path: str, scope: Scope) -> Response:
        rel = path.replace(os.sep, "/")
        if self.allow is not None and (".." in rel or not rel.startswith(self.allow)):
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = self.cache_control
        return response
