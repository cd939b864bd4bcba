"""Thin HTTP route of the search box."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gis_service.auth.deps import PUBLIC_READ
from gis_service.auth.principal import Principal
from gis_service.http.deps import Conn, reject_unknown_query
from gis_service.search import service

router = APIRouter(prefix="/api/v1", tags=["search"], dependencies=[Depends(reject_unknown_query)])


@router.get("/search", summary="Search hazard codes, grids, addresses and (staff) people")
def search(
    conn: Conn,
    principal: Annotated[Principal, Depends(PUBLIC_READ)],
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=64,
            description="A hazard code (or its start), a grid name or code, part of an "
            "address, or a person's name.",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=50, description="Most results of each kind.")] = 10,
) -> dict:
    """Hazards by public code (YH…), current grids by name or code prefix, hazards by address
    (closed ones only for staff in scope) and people by name (staff in scope only). Each
    result carries its context (街道 › 社区 for grids and people; the grid chain for hazards)
    so that identical names are told apart."""
    return service.search(conn, principal, q.strip() or q, limit)
