"""What the browser tests share: Debian's Chromium through Playwright (one browser per test
session), the server they drive (over a copy of the demo district; conftest.py starts it),
pages that record every request and console error, and accounts made by the CLI.

Playwright never downloads a browser: it launches /usr/bin/chromium. Screenshots go to
test-artifacts/ (git-ignored)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, text

from gis_service.config import PROJECT_ROOT, Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
DESKTOP = {"width": 1280, "height": 800}
WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct horse battery staple"
# A tiny grey PNG standing in for every AMap tile (nothing leaves the machine).
FAKE_TILE = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGPY+B8AAr8B3vbJeBIAAAAASUVORK5CYII="
)
AMAP_TILES = re.compile(r"^https?://webrd0\d\.is\.autonavi\.com/")


@dataclass
class Site:
    """The running server, its database URL and an engine beside it."""

    base: str
    engine: Engine
    url: str

    def api(self, path: str, **params: object) -> dict:
        """GET a JSON answer of the API (anonymously)."""
        r = httpx.get(self.base + path, params=params, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def one(self, sql: str, **params: object):
        """One row from the database."""
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).mappings().one()

    def rows(self, sql: str, **params: object) -> list:
        """Rows from the database."""
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params).mappings())

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """Run `gis-service …` against this site's database, as an operator does.

        In this process, as test_auth runs `users create`: the same command code, without the
        2-5 s a new interpreter spent importing the service for each account."""
        from typer.testing import CliRunner

        from gis_service.cli import app

        env = {"DATABASE_URL": self.url, "GIS_LOAD_DEMO": "false"}
        done = CliRunner().invoke(app, list(args), input=stdin, env=env)
        assert done.exit_code == 0, done.output
        return done.output

    def create_user(self, username: str, role: str, grid: str | None, name: str, person=None):
        """`gis-service users create …` with the test password; returns the username."""
        args = ["users", "create", username, "--role", role, "--name", name, "--password-stdin"]
        if grid:
            args += ["--grid", grid]
        if person:
            args += ["--person", str(person)]
        self.cli(*args, stdin=PASSWORD + "\n")
        return username

    def client(self, username: str) -> httpx.Client:
        """An HTTP client logged in as the user (session cookie and CSRF header)."""
        c = httpx.Client(base_url=self.base, timeout=30)
        r = c.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c


def site_settings(url: str, data_dir: Path) -> Settings:
    """Settings of the browser tests' server (tests/support/servers.py) on the database at url."""
    return Settings(
        database_url=url,
        data_dir=data_dir,
        load_demo=False,
        basemap="none",
        login_ip_per_minute=10_000,
        anon_reports_per_hour=10_000,
    )


@dataclass
class Tab:
    """A page with everything it requested and every console error it printed."""

    page: object
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def shot(self, name: str, full: bool = False) -> None:
        """A screenshot under test-artifacts/ (name may hold a folder)."""
        path = ARTIFACTS / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=full)

    def settle(self) -> None:
        self.page.wait_for_load_state("networkidle")

    def js(self, expr: str, arg: object = None):
        return self.page.evaluate(expr, arg)


def _open(
    browser,
    site: Site,
    path: str,
    *,
    phone: bool = False,
    amap: bool = False,
    user: str | None = None,
    viewport: dict | None = None,
    ready: str = "html[data-gm-ready]",
) -> Tab:
    """A fresh context (logged in as user, when given) showing path."""
    options: dict = {"viewport": viewport or (PHONE if phone else DESKTOP), "locale": "zh-CN"}
    if phone:
        options.update(
            is_mobile=True,
            has_touch=True,
            device_scale_factor=2,
            permissions=["geolocation"],
            geolocation={"longitude": 113.6468, "latitude": 34.7275, "accuracy": 12},
        )
    context = browser.new_context(**options)
    page = context.new_page()
    tab = Tab(page)
    page.on("request", lambda r: tab.requests.append(r.url))
    page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: tab.errors.append(f"pageerror: {e}"))
    page.on(
        "response",
        lambda r: tab.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    if amap:
        context.route(
            AMAP_TILES,
            lambda route: route.fulfill(status=200, content_type="image/png", body=FAKE_TILE),
        )
    if user:
        r = context.request.post(
            site.base + "/api/v1/auth/login", data={"username": user, "password": PASSWORD}
        )
        assert r.status == 200, r.text()
    page.goto(site.base + path)
    page.wait_for_selector(ready, timeout=20000)
    tab.settle()
    return tab


def _close(tab: Tab) -> None:
    tab.page.context.close()


def _off_machine(tab: Tab, site: Site) -> list[str]:
    return [
        u for u in tab.requests if not (u.startswith(site.base) or u.startswith(("data:", "blob:")))
    ]


def _clean(tab: Tab, site: Site) -> None:
    """Nothing was asked of another machine and the console stayed free of errors."""
    assert _off_machine(tab, site) == [], _off_machine(tab, site)
    assert tab.errors == [], tab.errors


def browser_session() -> Iterator[object]:
    """Debian's Chromium, headless, for the whole test session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
