"""Browser tests: Debian's Chromium driven by Playwright for Python, against a real server.

Chromium runs headless with background networking off (this machine, like CI, has no network
but loopback), and every request a page makes outside loopback is aborted and recorded, so a
test can prove the pages need nothing but the app. The map's tile server is such a request:
zones must still draw without it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
import segno
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route

from api.auth.tokens import TokenService

CHROMIUM = os.environ.get("LOYALTY_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions", "--mute-audio"]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "a long enough password"


def chromium_path() -> str:
    found = shutil.which(CHROMIUM) or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if not found:
        raise RuntimeError(f"Chromium not found at {CHROMIUM}: `apt-get install -y chromium` "
                           "(`.ci/run` does it), or set LOYALTY_CHROMIUM")
    return found


def launch(pw: Playwright, *, camera_y4m: Path | None = None) -> Browser:
    args = list(ARGS)
    if camera_y4m is not None:
        args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-video-capture={camera_y4m}"]
    return pw.chromium.launch(executable_path=chromium_path(), args=args)


@dataclass
class Tab:
    """A page and what it did: requests outside loopback, script errors."""

    page: Page
    context: BrowserContext
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class OpenTab(Protocol):
    """The `tabs` fixture: a new tab (in a context of its own) closed after the test."""

    def __call__(self, *, width: int = 1280, height: int = 900, browser: Browser | None = None,
                 **context_args: Any) -> Tab: ...


def is_loopback_url(url: str) -> bool:
    host = httpx.URL(url).host
    return host in ("127.0.0.1", "localhost", "::1") or url.startswith(("data:", "blob:"))


def open_tab(browser: Browser, base: str, *, width: int = 1280, height: int = 900,
             **context_args: Any) -> Tab:
    context = browser.new_context(viewport={"width": width, "height": height},
                                  base_url=base, locale="en-GB", **context_args)
    page = context.new_page()
    tab = Tab(page=page, context=context)

    def gate(route: Route) -> None:
        url = route.request.url
        if is_loopback_url(url):
            route.continue_()
        else:
            tab.outside.append(url)
            route.abort()

    context.route("**/*", gate)
    page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    return tab


def shoot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def next_frames(page: Page) -> None:
    """Return once the page has rendered two more frames (a new layout has been painted)."""
    page.evaluate("() => new Promise(done => requestAnimationFrame("
                  "() => requestAnimationFrame(done)))")


def wide_elements(page: Page, width: int) -> list[str]:
    """The first elements that reach past `width` px (what makes a page scroll sideways)."""
    found: list[str] = page.evaluate(
        "(width) => [...document.body.querySelectorAll('*')]"
        ".filter(e => e.getBoundingClientRect().right > width"
        " && !e.closest('.leaflet-container > *')).slice(0, 8)"
        ".map(e => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`)", width)
    return found


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Serious and critical accessibility violations on the page, by axe-core (from npm).
    The script is evaluated through the DevTools protocol, which the page's CSP does not
    govern, so the page keeps its real policy."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def qr_y4m(payload: str, path: Path, *, width: int = 640, height: int = 480) -> Path:
    """A fake camera stream (YUV4MPEG2, 4:2:0) showing a QR code of `payload`, for Chromium's
    --use-file-for-fake-video-capture."""
    qr = segno.make(payload, error="l", micro=False)
    matrix = np.array(list(qr.matrix), dtype=np.uint8)  # 1 = dark module
    border = 4
    modules = matrix.shape[0] + 2 * border
    scale = max(1, min(width, height) // modules)
    image = np.full((height, width), 235, dtype=np.uint8)
    code = np.pad(matrix, border, constant_values=0)
    pixels = np.where(np.kron(code, np.ones((scale, scale), dtype=np.uint8)) == 1, 16, 235)
    size = pixels.shape[0]
    top, left = (height - size) // 2, (width - size) // 2
    image[top:top + size, left:left + size] = pixels
    chroma = np.full((height // 2, width // 2), 128, dtype=np.uint8)
    frame = b"FRAME\n" + image.tobytes() + chroma.tobytes() + chroma.tobytes()
    header = f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * 2)
    return path


class Api:
    """The v1 API from the test's side (setting up what the pages then show)."""

    def __init__(self, base: str, tokens: TokenService) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        self.tokens = tokens

    def close(self) -> None:
        self.http.close()

    def token(self, role: str, program_id: str | None = None, stores: tuple[str, ...] = ()
              ) -> dict[str, str]:
        token = self.tokens.mint_access(
            sub=uuid.uuid4(), role=role,  # type: ignore[arg-type]
            program_id=uuid.UUID(program_id) if program_id else None,
            store_ids=[uuid.UUID(s) for s in stores])
        return {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, *, headers: dict[str, str], expect: int = 200,
             **kw: Any) -> Any:
        r = self.http.request(method, path, headers=headers, **kw)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content and "json" in r.headers.get("content-type", "") else r


@dataclass
class Shop:
    """A program with one manager, staff at its first store, and helpers to add more."""

    api: Api
    program_id: str
    manager_email: str
    staff_email: str
    store_ids: list[str]

    @property
    def admin(self) -> dict[str, str]:
        return self.api.token("admin")

    @property
    def manager(self) -> dict[str, str]:
        return self.api.token("manager", self.program_id)

    def member(self, *, consents: tuple[str, ...] = ("location_offers",),
               pin: str | None = "24680", first_name: str = "Camille") -> dict[str, Any]:
        email = f"m{uuid.uuid4().hex[:10]}@example.com"
        version = self.api.call("GET", "/v1/privacy/notice", headers={})["version"]
        body = {"email": email, "password": PASSWORD, "first_name": first_name,
                "consents": [{"purpose": p, "granted": True, "policy_version": version}
                             for p in consents]}
        data = self.api.call("POST", f"/v1/programs/{self.program_id}/members", json=body,
                             headers={}, expect=201)
        headers = {"Authorization": f"Bearer {data['access_token']}"}
        if pin:
            r = self.api.http.put("/v1/me/pin", json={"pin": pin}, headers=headers)
            if r.status_code == 400:  # the v1.1 contract asks for the password too
                r = self.api.http.put("/v1/me/pin", json={"pin": pin, "password": PASSWORD},
                                      headers=headers)
            assert r.status_code == 204, r.text
        return {"email": email, "headers": headers, "id": data["member"]["id"],
                "card_number": data["card"]["card_number"], "refresh": data["refresh_token"]}


def make_shop(api: Api, *, stores: list[dict[str, Any]] | None = None,
              name: str = "Gelato Uno", locale: str | None = None) -> Shop:
    admin = api.token("admin")
    program = api.call("POST", "/v1/programs", headers=admin, expect=201, json={
        "name": name, "currency": "EUR", "timezone": "Europe/Paris",
        "earn_rate": {"points": 1, "per_amount": 100}, "points_expiry_days": 365,
        "tiers": [{"name": "Silver", "min_points_12m": 0, "earn_multiplier": 1},
                  {"name": "Gold", "min_points_12m": 1000, "earn_multiplier": 1.5}],
        "stored_value": True, **({"locale": locale} if locale else {})})
    pid = program["id"]
    manager_h = api.token("manager", pid)
    store_ids = [api.call("POST", f"/v1/programs/{pid}/stores", headers=manager_h, expect=201,
                          json=s)["id"] for s in (stores or [])]
    suffix = uuid.uuid4().hex[:8]
    manager_email, staff_email = f"manager-{suffix}@example.com", f"staff-{suffix}@example.com"
    api.call("POST", f"/v1/programs/{pid}/accounts", headers=admin, expect=201,
             json={"email": manager_email, "password": PASSWORD, "role": "manager"})
    api.call("POST", f"/v1/programs/{pid}/accounts", headers=admin, expect=201,
             json={"email": staff_email, "password": PASSWORD, "role": "staff",
                   "store_ids": store_ids[:1]})
    return Shop(api=api, program_id=pid, manager_email=manager_email, staff_email=staff_email,
                store_ids=store_ids)


def sign_in(page: Page, email: str, path: str = "/console") -> None:
    page.goto(path)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@contextmanager
def closing_api(base: str, tokens: TokenService) -> Iterator[Api]:
    api = Api(base, tokens)
    try:
        yield api
    finally:
        api.close()
