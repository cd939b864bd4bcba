"""Property-based fuzzing with schemathesis against our own OpenAPI documents, in process
(ASGI). Bounded for CI by a fixed number of valid and invalid examples per operation, drawn
from a fixed seed: every run sends the same cases to every operation (no wall-clock budget
that would test less on a busy machine).

- ``test_fuzz``: /openapi.json as an admin, so that every operation is reached;
- ``test_fuzz_anonymous``: /openapi.json with no credential (what the public gets);
- ``test_fuzz_ogc``: the OGC API's own definition (/ogc/api) with every check schemathesis
  ships, so that it accepts what it documents and refuses what it does not.

They must find no 500 and no response the document does not describe (issue 11, finding 12).
With every check (ALL_CHECKS), except the operations of OPEN_MISMATCHES, which still run
CHECKS: rules the document cannot state yet, listed with why, each a decision to take.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    CHECKS as REGISTERED_CHECKS,
)
from schemathesis.checks import (
    content_type_conformance,
    load_all_checks,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gis_service.app import create_app
from gis_service.config import Settings
from gis_service.db.engine import make_engine
from tests.support.authkit import app_settings, bearer_for, make_user
from tests.support.databases import DEMO, Databases

EXAMPLES = {GenerationMode.POSITIVE: 4, GenerationMode.NEGATIVE: 2}
_METHODS = ("get", "put", "post", "patch", "delete")
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
]
# schemathesis gives up on an answer after 10 s; the admin's whole-territory offline package
# and facilities export took longer than that on a loaded 2-core machine (CI failed on the
# export once). The fuzz judges answers, not speed (bench/).
TIMEOUT_S = 120
# Fewer cases for the extra passes: the admin pass already covers the operations' logic.
ANONYMOUS_EXAMPLES = {GenerationMode.POSITIVE: 2, GenerationMode.NEGATIVE: 1}
OGC_EXAMPLES = {GenerationMode.POSITIVE: 3, GenerationMode.NEGATIVE: 2}
load_all_checks()
# Every check schemathesis ships (``--checks all``): positive_data_acceptance and
# negative_data_rejection hold the definition to what the server really accepts.
ALL_CHECKS = list(REGISTERED_CHECKS.get_all())
# (issue 11, finding 12) Operations whose document cannot yet state a rule the server must
# keep, so that positive_data_acceptance fails on them; they run CHECKS (no 500, documented
# statuses, bodies and headers) until each is decided. Remove a line once its rule is stated.
_OUTSIDE = "a point in no grid is refused (422 outside_grids); the territory is no schema"
_ROLE = (
    "a role fits the levels of the grid in the path (422 role_not_for_level); its dates lie "
    "between 1900 and a year from today (date_out_of_range), the end after the start"
)
OPEN_MISMATCHES = {
    "POST /api/v1/hazards": _OUTSIDE,
    "POST /api/v1/orders": _OUTSIDE,
    "POST /api/v1/hazards/{hazard_id}/actions": "If-Match header or version field (428)",
    "POST /api/v1/imports": "the file's content and format are checked, not the schema",
    "POST /api/v1/grids/{grid_id}/assignments": _ROLE,
    "PUT /api/v1/grids/{grid_id}/leader": _ROLE,
    "POST /open311/v2/requests.{fmt}": "Open311's form: service_code required, undocumented",
    "GET /api/v1/care/coverage": "a month that has not begun is refused (depends on today)",
    "POST /api/v1/visits": "the multipart form states every field as text: lat='x' and a "
    "sixth photo are refused (JSON body: stated)",
    "POST /api/v1/patrols": "a point is [lon, lat, t] or with accuracy: no tuple schema yet",
    "POST /api/v1/patrols/gpx": "the GPX content is checked, not the schema",
}
# One collection of each kind (grid level, facility type, hazards) and the metadata pages:
# the paths of the other collections are built by the same code.
OGC_COLLECTIONS = ("grids_micro_grid", "facilities_rain_grate", "hazards_open")

# The operations, listed at collection time from a database-less app (same code, same schema).
_SCHEMA = create_app(
    Settings(database_url="postgresql+psycopg2://nobody@/none", load_demo=False)
).openapi()
LABELS = [
    f"{method.upper()} {path}"
    for path, item in _SCHEMA["paths"].items()
    for method in item
    if method in _METHODS
]


@pytest.fixture(scope="module")
def fuzz_app(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    url = databases.new("fuzz", DEMO)
    data_dir: Path = tmp_path_factory.mktemp("fuzz-data")
    app = create_app(app_settings(url, data_dir))
    engine = make_engine(url, pool_size=1)
    admin = make_user(engine, "admin")
    app.state.fuzz_admin = (engine, admin["id"])
    with TestClient(app):  # runs the lifespan
        yield app
    engine.dispose()


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_app):
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


def _run(operation, examples: dict, call, checks: list) -> None:
    """Send the operation's cases of each mode (fixed seed) and check every answer."""
    for mode, count in examples.items():

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=count,
            deadline=None,
            derandomize=True,  # the same cases on every run, so a CI failure reproduces
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case) -> None:
            case.validate_response(call(case), checks=checks)

        try:
            run()
        except Unsatisfiable:
            continue  # nothing to vary, or no invalid input the schema can express


@pytest.mark.parametrize("label", LABELS)
def test_fuzz_anonymous(label: str, fuzz_schema) -> None:
    """What a caller with no credential gets is documented too (401, 403, 400 …)."""
    operation = fuzz_schema.find_operation_by_label(label)
    assert operation is not None, label
    checks = CHECKS if label in OPEN_MISMATCHES else ALL_CHECKS
    _run(operation, ANONYMOUS_EXAMPLES, lambda case: case.call(timeout=TIMEOUT_S), checks)


@pytest.fixture(scope="module")
def ogc_schema(fuzz_app):
    return schemathesis.openapi.from_asgi("/ogc/api", fuzz_app)


def _ogc_labels() -> list[str]:
    fixed = ["GET /", "GET /api", "GET /conformance", "GET /collections"]
    per = ["GET /collections/{c}", "GET /collections/{c}/queryables"]
    per += ["GET /collections/{c}/items", "GET /collections/{c}/items/{{featureId}}"]
    return fixed + [p.format(c=c) for c in OGC_COLLECTIONS for p in per]


@pytest.mark.parametrize("label", _ogc_labels())
def test_fuzz_ogc(label: str, ogc_schema) -> None:
    """The OGC definition, with every check: it documents what the server accepts."""
    operation = ogc_schema.find_operation_by_label(label)
    assert operation is not None, label
    _run(operation, OGC_EXAMPLES, lambda case: case.call(timeout=TIMEOUT_S), ALL_CHECKS)


@pytest.mark.parametrize("label", LABELS)
def test_fuzz(label: str, fuzz_app, fuzz_schema) -> None:
    operation = fuzz_schema.find_operation_by_label(label)
    assert operation is not None, label
    engine, admin_id = fuzz_app.state.fuzz_admin

    def call(case):
        # A fresh token per call: the fuzzer may log out or revoke the one it is given.
        # Every status and media type answered must be documented, so that clients
        # generated from the document handle them (issue 11, finding 12).
        headers = bearer_for(engine, fuzz_app.state.settings, admin_id)
        return case.call(headers=headers, timeout=TIMEOUT_S)

    _run(operation, EXAMPLES, call, CHECKS if label in OPEN_MISMATCHES else ALL_CHECKS)
