"""The OpenAPI document names every error an /api operation can answer, with the one error
body (issue 11, finding 12): schemathesis found undocumented 400, 401, 403, 413 and 415
answers, and 422 documented as FastAPI's {detail: [...]} while the service sends
{code, message, details}. Clients generated from the document must handle what they get."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from gis_service.db.limits import BIGINT_MAX
from gis_service.errors import BadRequest
from gis_service.hazards.versions import IF_MATCH_PATTERN, parse_if_match
from gis_service.orders.schemas import PartnerIn
from gis_service.people.phones import normalize_phone
from gis_service.plaintext import TEXT_PATTERN
from gis_service.whistles.schemas import WhistleIn
from tests.support.authkit import bearer_for, make_user

_METHODS = ("get", "put", "post", "patch", "delete")


def _operations(doc: dict) -> list[tuple[str, str, dict]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        if path.startswith("/api/")
        for method, op in item.items()
        if method in _METHODS
    ]


def test_every_error_is_documented_with_the_error_body(demo_client: TestClient) -> None:
    doc = demo_client.get("/openapi.json").json()
    assert doc["components"]["schemas"]["Error"]["required"] == ["code", "message", "details"]
    problems = []
    for path, method, op in _operations(doc):
        statuses = set(op["responses"])
        wanted = {"400", "503"}
        if "anonymous" not in op["x-roles"]:
            wanted |= {"401", "403"}
        if "requestBody" in op:
            wanted |= {"413", "415"}
        if missing := wanted - statuses:
            problems.append(f"{method.upper()} {path}: {sorted(missing)} undocumented")
        for status, response in op["responses"].items():
            if status[0] in "45":
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if schema != {"$ref": "#/components/schemas/Error"}:
                    problems.append(f"{method.upper()} {path} {status}: body is not Error")
    assert not problems, "\n".join(problems[:30])


def test_what_an_anonymous_caller_gets_is_documented(demo_client: TestClient) -> None:
    """Each protected operation, called anonymously with a NUL in its query: the answer (400
    from the edge, 401, …) is one the document lists, in the documented body."""
    doc = demo_client.get("/openapi.json").json()
    seen = 0
    for path, method, op in _operations(doc):
        if "anonymous" in op["x-roles"] or "{" in path:
            continue
        for query in ("", "?q=%00"):
            r = demo_client.request(method.upper(), path + query)
            assert str(r.status_code) in op["responses"], (method, path, query, r.status_code)
            body = r.json()
            assert set(body) == {"code", "message", "details"}, (method, path, body)
            assert re.fullmatch(r"[a-z_]+", body["code"])
            seen += 1
    assert seen > 20


def test_every_move_declares_the_refusals_of_a_move(demo_client: TestClient) -> None:
    """The moves of hazards, service orders and 吹哨 calls share one declaration of what a move
    can be refused with (gis_service.http.errors.move_docs); hazards add 428 for If-Match."""
    doc = demo_client.get("/openapi.json").json()
    moves = {
        "/api/v1/hazards/{hazard_id}/actions": {"428"},
        "/api/v1/orders/{order_id}/actions": set(),
        "/api/v1/whistles/{call_id}/actions": set(),
    }
    for path, extra in moves.items():
        responses = doc["paths"][path]["post"]["responses"]
        assert {"403", "404", "409", "412"} | extra <= set(responses), path
        assert "allowed ones are listed" in responses["409"]["description"], path
        assert "older version" in responses["412"]["description"], path


def test_a_405_names_every_method_of_the_path(demo_client: TestClient) -> None:
    """RFC 9110 §15.5.6: the Allow header of a 405 lists every method the resource supports.
    Starlette named only the first matching route's method (GET of /api/v1/hazards, which
    also takes POST), so a client retrying with an allowed method was misled."""
    doc = demo_client.get("/openapi.json").json()
    checked = 0
    for path, item in doc["paths"].items():
        documented = {m.upper() for m in item if m in _METHODS}
        unused = [m for m in ("DELETE", "PUT", "PATCH", "POST") if m not in documented]
        if len(documented) < 2 or not unused or "{" in path:
            continue
        r = demo_client.request(unused[0], path)
        assert r.status_code == 405, (path, unused[0], r.status_code)
        allowed = {m.strip() for m in r.headers["allow"].split(",")}
        expected = documented | ({"HEAD"} if "GET" in documented else set())
        assert allowed == expected, (path, r.headers["allow"])
        assert r.json()["code"] == "method_not_allowed"
        checked += 1
    assert checked >= 8


def test_an_empty_grid_filter_on_users_is_a_422(demo_client: TestClient) -> None:
    """GET /api/v1/users?grid= was a 500 (an assertion on the grid it did not find)."""
    engine = demo_client.app.state.engine
    admin = make_user(engine, "admin")
    headers = bearer_for(engine, demo_client.app.state.settings, admin["id"])
    r = demo_client.get("/api/v1/users?grid=", headers=headers)
    assert r.status_code == 422 and r.json()["code"] == "invalid_parameter"


def test_an_offset_postgresql_cannot_hold_is_read_in_utc(demo_client: TestClient) -> None:
    """ISO 8601 allows an offset of -18:36 and PostgreSQL does not (±15:59): /audit?since=
    with one was a 500. Date-time parameters are turned into UTC before they reach SQL."""
    engine = demo_client.app.state.engine
    admin = make_user(engine, "admin")
    headers = bearer_for(engine, demo_client.app.state.settings, admin["id"])
    r = demo_client.get("/api/v1/audit?since=2026-01-01T00:56:10.4-18:36", headers=headers)
    assert r.status_code == 200, r.text
    r = demo_client.get("/api/v1/audit?since=1700000000", headers=headers)
    assert r.status_code == 422  # a bare number is not read as seconds since 1970


def test_a_bad_credential_gets_a_documented_401_everywhere(demo_client: TestClient) -> None:
    """A revoked or unknown token is refused with 401 on public operations too (pages, tiles,
    /ogc); both documents list that answer (schemathesis found it undocumented once the
    fuzzer had revoked its own token)."""
    bogus = {"Authorization": "Bearer gst_not-a-token"}
    doc = demo_client.get("/openapi.json").json()
    seen = 0
    for path, item in doc["paths"].items():
        if "get" not in item or "{" in path or path in ("/openapi.json", "/health", "/ready"):
            continue
        r = demo_client.get(path, headers=bogus)
        assert str(r.status_code) in item["get"]["responses"], (path, r.status_code)
        seen += r.status_code == 401
    assert seen > 20
    ogc = demo_client.get("/ogc/api").json()
    r = demo_client.get("/ogc/collections", headers=bogus)
    assert r.status_code == 401 and "401" in ogc["paths"]["/collections"]["get"]["responses"]


def test_dates_at_the_end_of_a_month_are_accepted(demo_client: TestClient) -> None:
    """The documented date pattern once allowed days 01–28 only (to keep fuzzers off 30
    February), so every parameter using it refused the 29th–31st with a 422: CI met it on
    30 November. Every day of a month is a date; an impossible one is the parser's to refuse."""
    for day in ("2026-10-31", "2026-11-30", "2024-02-29"):
        r = demo_client.get("/api/v1/hazards", params={"since": day, "limit": 1})
        assert r.status_code == 200, (day, r.text)
        r = demo_client.get("/api/v1/locate", params={"lon": 113.6468, "lat": 34.7275, "at": day})
        assert r.status_code in (200, 404), (day, r.text)
        assert r.status_code != 422
    # the patterns state each month's real days (issue 11, finding 12): 29 February of leap
    # years, 30 November, no 31 November (schemathesis sent 1883-02-31 to /ogc)
    datetime = demo_client.get("/ogc/api").json()["components"]["parameters"]["datetime"]
    pattern = datetime["schema"]["pattern"]
    assert re.search(pattern, "2024-02-29/2026-11-30") and not re.search(pattern, "1883-02-31")
    assert "(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])" in demo_client.get("/openapi.json").text
    r = demo_client.get("/api/v1/hazards", params={"since": "2026-02-30", "limit": 1})
    assert r.status_code in (400, 422) and r.json()["code"] != "internal_error"


def test_the_document_states_what_the_server_checks(demo_client: TestClient, demo_engine) -> None:
    """Rules schemathesis --checks all found undocumented (issue 11, finding 12), each now in
    the document, taken from the declaration the server validates with."""
    doc = demo_client.get("/openapi.json").json()
    catalog = demo_client.app.state.catalog
    paths = doc["paths"]

    def param(path: str, name: str) -> dict:
        return next(p for p in paths[path]["get"]["parameters"] if p["name"] == name)

    # the catalogue's codes, put in at app start
    report = paths["/api/v1/hazards"]["post"]["requestBody"]["content"]["application/json"]
    assert report["schema"]["properties"]["category"]["enum"] == sorted(catalog.hazard_categories)
    order = doc["components"]["schemas"]["OrderIn"]["properties"]["service_type"]
    assert order["enum"] == sorted(catalog.services)
    types = param("/api/v1/facilities/nearest", "type")["schema"]["anyOf"][0]["pattern"]
    assert re.search(types, " rain_grate,,bench ") and not re.search(types, "Open hazards")
    # a bbox as /ogc states it; the working calendar's years and its limits
    bbox = param("/api/v1/hazards", "bbox")
    assert (bbox["schema"]["type"], bbox["style"], bbox["explode"]) == ("array", "form", False)
    limit = param("/api/v1/calendar/due", "limit")["schema"]["pattern"]
    assert re.search(limit, "2 工作日") and not re.search(limit, "0" * 31)
    since = param("/api/v1/calendar", "from")["schema"]["anyOf"][0]["pattern"]
    assert re.search(since, "2026-10-01") and not re.search(since, "9999-12-31")
    # username and password together or not at all, in the schema and on the server
    tokens = doc["components"]["schemas"]["TokenRequest"]
    assert {"required": ["username", "password"]} in tokens["anyOf"]
    r = demo_client.post("/api/v1/auth/tokens", json={"username": "someone"})
    assert r.status_code == 422, r.text
    # bodies hold the types the document says: no booleans or strings for numbers
    r = demo_client.post("/api/v1/locate", json={"points": [[113.6, False]]})
    assert r.status_code == 422, r.text
    batch = doc["paths"]["/api/v1/locate"]["post"]["requestBody"]["content"]["application/json"]
    points = batch["schema"]["properties"]["points"]
    assert points["items"]["prefixItems"][1]["maximum"] == 90
    admin = make_user(demo_engine, "admin")
    headers = bearer_for(demo_engine, demo_client.app.state.settings, admin["id"])
    volunteer = {"name": "严格", "grid": 1, "party_member": "yes"}
    r = demo_client.post("/api/v1/volunteers", json=volunteer, headers=headers)
    assert r.status_code == 422, r.text
    # OPTIONS on /patrols/gpx names its one method, not the GET of /patrols/{patrol_id}
    r = demo_client.options("/api/v1/patrols/gpx", headers=headers)
    assert r.status_code == 405 and r.headers["allow"] == "POST", r.headers


def test_the_document_states_real_dates_points_and_patches(demo_client: TestClient) -> None:
    """More rules the document now states as the server applies them (issue 11, finding 12):
    only real dates (no 31 November), lon,lat as /ogc writes a list, a patch's fields that
    may be left out but not nulled and at least one of them, one person named one way, and
    free text without control characters (a line also not blank)."""
    doc = demo_client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    changes = next(
        p for p in doc["paths"]["/api/v1/grids/changes"]["get"]["parameters"]
        if p["name"] == "since"
    )["schema"]["pattern"]  # fmt: skip
    assert re.search(changes, "2026-11-30") and not re.search(changes, "2026-11-31")
    assert re.search(changes, "2024-02-29") and not re.search(changes, "2026-02-29")
    near = next(
        p for p in doc["paths"]["/api/v1/care/people"]["get"]["parameters"] if p["name"] == "near"
    )
    assert (near["schema"]["type"], near["style"], near["explode"]) == ("array", "form", False)
    patch = schemas["PersonPatch"]
    assert patch["properties"]["name"]["type"] == "string"  # not nullable
    assert {"required": ["name"]} in patch["anyOf"]
    leader = schemas["LeaderIn"]
    assert leader["oneOf"] == [{"required": ["person_id"]}, {"required": ["person"]}]
    reason = patch["properties"]["reason"]["pattern"]
    assert re.search(reason, " 调整 ") and not re.search(reason, "   ")
    assert not re.search(reason, "a\x07b")
    r = demo_client.get("/api/v1/grids/changes", params={"since": "2026-11-31"})
    assert r.status_code == 422, r.text


def test_optional_codes_and_limits_in_bodies_are_stated(demo_client: TestClient) -> None:
    """An optional catalogue code (a leader's role) gets the catalogue's codes too, and a 吹哨
    call's time limits the pattern TimeLimit reads (schemathesis sent role 'a' and act
    '000…0', both schema-valid and refused)."""
    schemas = demo_client.get("/openapi.json").json()["components"]["schemas"]
    catalog = demo_client.app.state.catalog
    role = schemas["LeaderIn"]["properties"]["role"]["anyOf"][0]
    assert role["enum"] == sorted(catalog.assignment_roles)
    act = schemas["WhistleIn"]["properties"]["act"]["pattern"]
    assert re.search(act, "3 工作日") and not re.search(act, "0" * 31)


def test_a_stated_code_list_keeps_its_bounds(demo_client: TestClient) -> None:
    """A code list the document states from its codes keeps the length the server checks:
    GET /queues?source= of 201 characters was schema-valid and refused (422)."""
    doc = demo_client.get("/openapi.json").json()
    source = next(
        p for p in doc["paths"]["/api/v1/queues"]["get"]["parameters"] if p["name"] == "source"
    )
    assert source["schema"]["anyOf"][0]["maxLength"] == 200, source


def test_ids_keys_and_grid_refs_are_stated_as_the_server_reads_them(
    demo_client: TestClient, demo_engine
) -> None:
    """schemathesis --checks all (issue 11, finding 12): a body id's bound is exact (FastAPI
    wrote it as the float 2**63, one past what the server takes), the Idempotency-Key's
    pattern refuses a final line break in Python's reading of ``$`` too, and GET /users
    states the rule its grid= is checked with."""
    served = demo_client.get("/openapi.json")
    assert "9.223372036854776e+18" not in served.text
    doc = served.json()
    grid = doc["components"]["schemas"]["VolunteerIn"]["properties"]["grid"]
    assert grid["maximum"] == BIGINT_MAX and isinstance(grid["maximum"], int)
    admin = make_user(demo_engine, "admin")
    headers = bearer_for(demo_engine, demo_client.app.state.settings, admin["id"])
    for too_big in (BIGINT_MAX + 1, float(BIGINT_MAX)):  # the float is 2**63
        r = demo_client.post(
            "/api/v1/volunteers", json={"name": "大数", "grid": too_big}, headers=headers
        )
        assert r.status_code == 422, r.text
    visit = doc["paths"]["/api/v1/visits"]["post"]["parameters"]
    key = next(p for p in visit if p["name"] == "Idempotency-Key")["schema"]
    assert re.search(key["pattern"], "phone-42-visit-1")
    assert not re.search(key["pattern"], "phone-42-visit-1\n")
    # a field that needs another (a visit's hazard_severity needs its hazard_category)
    visits = doc["paths"]["/api/v1/visits"]["post"]["requestBody"]["content"]
    needs = visits["application/json"]["schema"]["allOf"]
    severity = next(r for r in needs if r["if"]["required"] == ["hazard_severity"])
    assert severity["then"]["required"] == ["hazard_category"]
    users = doc["paths"]["/api/v1/users"]["get"]["parameters"]
    ref = next(p for p in users if p["name"] == "grid")["schema"]["anyOf"][0]
    assert ref["pattern"] == TEXT_PATTERN and not re.search(ref["pattern"], "41\x0101")
    r = demo_client.get("/api/v1/users", params={"grid": "41\x0101"}, headers=headers)
    assert r.status_code == 422, r.text


def test_phones_passwords_usernames_and_dates_are_stated(
    demo_client: TestClient, demo_engine
) -> None:
    """The rules schemathesis --checks all found only in code (issue 11, finding 12) are
    patterns the server reads with: a phone (people.phones), a password's strength, a
    username, one-line display names, a role's grid, a date of a role."""
    doc = demo_client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    phone = schemas["PersonIn"]["properties"]["mobile_phone"]["anyOf"][0]["pattern"]
    written = ["13812345678", "+86 138-1234-5678", "0371-6612 3456-801", "(0371) 66123456"]
    for accepted in [*written, "(0371) 66123456-801", "0086 371 6612345 ext. 12"]:
        assert re.search(phone, accepted) and normalize_phone(accepted), accepted
    for refused in ("12345", "call me", "100-1234-5678", "86 56174332转9", "0371\x0b66123456"):
        assert not re.search(phone, refused), refused
        with pytest.raises(ValueError):
            normalize_phone(refused)
    admin = make_user(demo_engine, "admin")
    headers = bearer_for(demo_engine, demo_client.app.state.settings, admin["id"])
    # a dash extension after parentheses was refused; the pattern says it is a phone
    r = demo_client.post(
        "/api/v1/people",
        json={"name": "分机", "work_phone": "(0371) 66123456-801", "reason": "x"},
        headers=headers,
    )
    assert r.status_code == 201 and r.json()["work_phone"] == "0371-66123456-801", r.text
    user = schemas["UserCreate"]
    strong = user["properties"]["password"]["pattern"]
    assert re.search(strong, "abcdabcdab") and not re.search(strong, "abcabcabca")
    assert not re.search(strong, " \t\n\r" * 3)
    assert {"required": ["grid"], "properties": {"grid": {"not": {"type": "null"}}}} in [
        rule["then"] for rule in user["allOf"]
    ]
    name = user["properties"]["username"]["pattern"]
    assert re.search(name, " zhang.wei ") and not re.search(name, "\u212aelvin")
    valid_from = schemas["AssignmentIn"]["properties"]["valid_from"]["anyOf"][0]["pattern"]
    assert re.search(valid_from, "2026-03-01") and not re.search(valid_from, "2026-02-30")
    for body in (
        {"username": "\u212aelvin", "display_name": "开尔文"},  # lower-cased to a k before
        {"username": "tab.name", "display_name": "张\t伟"},  # one line, as documented
    ):
        account = {**body, "password": "abcdabcdab", "role": "admin"}
        r = demo_client.post("/api/v1/users", json=account, headers=headers)
        assert r.status_code == 422, r.text


def test_forms_headers_and_if_match_are_stated(demo_client: TestClient) -> None:
    """A multipart body states the JSON body's fields (a form sends them as text: lat is a
    number, action one of the moves, at most the photos a step takes); a form's or a header's
    optional value is text, never null; If-Match states parse_if_match's rule (issue 11,
    finding 12)."""
    doc = demo_client.get("/openapi.json").json()
    paths = doc["paths"]

    def form(path: str) -> dict:
        return paths[path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]

    visit = form("/api/v1/visits")
    assert visit["properties"]["lat"]["anyOf"][0] == {
        "maximum": 90,
        "minimum": -90,
        "type": "number",
    }
    assert visit["properties"]["photos"]["maxItems"] == 5
    assert visit["additionalProperties"] is False and visit["allOf"]
    action = form("/api/v1/hazards/{hazard_id}/actions")["properties"]["action"]
    assert "accept" in action["enum"] and action["minLength"] == 1
    open311 = doc["components"]["schemas"]["Body_create_request_open311_v2_requests__fmt__post"]
    assert {"service_code", "lat", "long"} <= set(open311["required"])
    assert all("anyOf" not in p for p in open311["properties"].values())
    # a field the form does not name is ignored; a NUL in it is refused at the edge
    assert open311["additionalProperties"] == {"type": "string", "pattern": r"^[^\x00]*$"}
    assert open311["propertyNames"] == {"pattern": r"^[^\x00]*$"}
    description = open311["properties"]["description"]["pattern"]
    assert re.search(description, "") and re.search(description, "井盖\x0b塌陷")
    for refused in ("\x0b \x0c", "a\x00b", "\n"):  # blank once stripped, or a NUL
        assert not re.search(description, refused), refused
    actions = paths["/api/v1/hazards/{hazard_id}/actions"]["post"]["parameters"]
    if_match = next(p for p in actions if p["name"] == "If-Match")["schema"]
    assert if_match["type"] == "string" and if_match["pattern"] == IF_MATCH_PATTERN
    for value, version in (('"3"', 3), ('W/"12"', 12), ("7", 7), (" ", None), ('"5", "6"', 5)):
        assert re.search(if_match["pattern"], value) and parse_if_match(value) == version
    for value in ("3_0", '""3""', '"0"', "soon", "٣"):  # int() read the first two
        assert not re.search(if_match["pattern"], value)
        with pytest.raises(BadRequest):
            parse_if_match(value)


def test_booleans_and_skills_are_read_as_stated(demo_client: TestClient, demo_engine) -> None:
    """schemathesis --checks all against a served demo (issue 11, finding 12): a person's
    party_member 0 was taken as false though the document says boolean; a volunteer's
    skill of "" or of 41 characters was refused though the document said any string."""
    admin = make_user(demo_engine, "admin")
    headers = bearer_for(demo_engine, demo_client.app.state.settings, admin["id"])
    r = demo_client.post(
        "/api/v1/people", json={"name": "王芳", "party_member": 0, "reason": "x"}, headers=headers
    )
    assert r.status_code == 422, r.text
    doc = demo_client.get("/openapi.json").json()
    skill = doc["components"]["schemas"]["VolunteerIn"]["properties"]["skills"]["items"]
    for refused in ("", "   ", "x" * 41, "a\x00b"):
        assert not re.search(skill["pattern"], refused), refused
    for taken in ("助老", "  " + "x" * 40 + " "):
        assert re.search(skill["pattern"], taken), taken


def test_offers_and_time_limits_are_read_as_stated(demo_client: TestClient) -> None:
    """schemathesis --checks all against a served demo (issue 11, finding 12): a partner's
    offer was any string in the document though the server takes 1-40 characters (as a
    volunteer's skill); a 吹哨 time limit's maxLength was counted after the model stripped it,
    so a longer text the document refuses was taken."""
    doc = demo_client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    skill = schemas["VolunteerIn"]["properties"]["skills"]["items"]
    for name in ("PartnerIn", "PartnerPatch"):
        offers = schemas[name]["properties"]["offers"]
        items = offers["items"] if "items" in offers else offers["anyOf"][0]["items"]
        assert items["pattern"] == skill["pattern"], name
    with pytest.raises(ValidationError):
        PartnerIn(name="共建单位", grid=1, offers=["x" * 41])
    act = schemas["WhistleIn"]["properties"]["act"]
    padded = " 3 工作日" + " " * 30
    assert len(padded) > act["maxLength"] and re.search(act["pattern"], padded)
    with pytest.raises(ValidationError):
        WhistleIn(parties=[{"department": "urban_mgmt"}], act=padded)
    assert WhistleIn(parties=[{"department": "urban_mgmt"}], act=" 3 工作日 ").act == "3 工作日"
