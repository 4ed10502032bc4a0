"""Who may open what, the session cookie, CSRF, and what the pages load.

Done when (#11): a member token and a staff token cannot open /console; staff of another store
cannot see this store's transactions; the pages load with no network but loopback, and the
response headers carry the CSP (no inline script, no origin but the app's and the tiles').
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from playwright.sync_api import expect
from support.browser import PASSWORD, Api, OpenTab, make_shop, sign_in

OPERA = {"code": "OPERA", "name": "Opéra",
         "zone": {"type": "Circle", "center": [2.3316, 48.8708], "radius_m": 100}}
LOUVRE = {"code": "LOUVRE", "name": "Louvre",
          "zone": {"type": "Circle", "center": [2.3404, 48.8618], "radius_m": 80}}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; "
       "img-src 'self' data: https://tile.openstreetmap.org; connect-src 'self'; font-src 'self'; "
       "media-src 'self' blob:; worker-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")


def jar_header(cookies: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


def refresh_token(api: Api, program_id: str, email: str) -> str:
    r = api.http.post("/v1/auth/token", json={"grant_type": "password", "email": email,
                                              "password": PASSWORD, "program_id": program_id})
    assert r.status_code == 200, r.text
    return str(r.json()["refresh_token"])


def test_member_and_staff_tokens_cannot_open_the_console(
        api: Api, web_server: str, tabs: OpenTab) -> None:
    shop = make_shop(api, stores=[OPERA])
    member = shop.member()
    staff_refresh = refresh_token(api, shop.program_id, shop.staff_email)
    for token in (member["refresh"], staff_refresh):
        tab = tabs()
        tab.context.add_cookies([{"name": "loyalty_console_session", "value": token,
                                  "url": f"{web_server}/console"}])
        calls: list[str] = []
        tab.page.on("request", lambda r, calls=calls: calls.append(r.url))
        tab.page.goto("/console")
        expect(tab.page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
        assert tab.page.locator("meta[name=csrf-token]").get_attribute("content") == ""
        assert not [u for u in calls if "/v1/" in u or "/session/refresh" in u]
        r = api.http.post("/console/session/refresh", headers={
            "Cookie": f"loyalty_console_session={token}", "X-CSRF-Token": "x"})
        assert r.status_code == 401, r.text
        tab.context.close()

    # Staff who try the console's form are told where to go, and get no session.
    tab = tabs()
    sign_in(tab.page, shop.staff_email)
    expect(tab.page.locator("form .notice.error")).to_contain_text("staff use the till at /till")
    assert tab.context.cookies() == []
    # ... and a member's credentials open nothing either.
    r = api.http.post("/console/session", json={"email": member["email"],
                                                 "password": PASSWORD})
    assert r.status_code == 401 and "set-cookie" not in r.headers


def test_staff_of_another_store_cannot_see_this_stores_transactions(
        api: Api, tabs: OpenTab) -> None:
    shop = make_shop(api, stores=[OPERA, LOUVRE])
    opera, louvre = shop.store_ids
    louvre_email = f"louvre-{uuid.uuid4().hex[:6]}@example.com"
    api.call("POST", f"/v1/programs/{shop.program_id}/accounts", headers=shop.admin,
             expect=201, json={"email": louvre_email, "password": PASSWORD, "role": "staff",
                               "store_ids": [louvre]})
    member = shop.member()
    opera_staff = api.token("staff", shop.program_id, (opera,))
    api.call("POST", "/v1/pos/purchases", expect=201,
             headers={**opera_staff, "Idempotency-Key": str(uuid.uuid4())},
             json={"store_id": opera, "card_number": member["card_number"],
                   "receipt_id": "OP-1", "amount": 1200, "currency": "EUR"})
    louvre_staff = api.token("staff", shop.program_id, (louvre,))
    r = api.http.get(f"/v1/pos/stores/{opera}/transactions", headers=louvre_staff)
    assert r.status_code == 403, r.text
    mine = api.call("GET", f"/v1/pos/stores/{opera}/transactions", headers=opera_staff)
    assert [t["receipt_id"] for t in mine["items"]] == ["OP-1"]

    page = tabs(width=390, height=844).page
    sign_in(page, louvre_email, "/till")
    expect(page.get_by_text("LOUVRE ·")).to_be_visible()  # its only store, chosen for it
    page.get_by_role("tab", name="Recent").click()
    expect(page.locator("#recent")).to_contain_text("No transaction in this store yet")
    stores = page.evaluate("""async () => {
        const r = await fetch('/v1/pos/stores'); return r.status; }""")
    assert stores == 401  # the API takes no cookie: only the page's in-memory token


def test_session_cookie_is_httponly_strict_and_refresh_and_logout_need_the_csrf_token(
        api: Api, web_server: str) -> None:
    shop = make_shop(api, stores=[OPERA])
    login = {"email": shop.manager_email, "password": PASSWORD}
    r = api.http.post("/console/session", json=login)
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/console" in cookie
    assert "samesite=strict" in cookie.lower()
    assert "Secure" not in cookie  # served on loopback
    body = r.json()
    assert body["account"]["role"] == "manager" and "refresh_token" not in body
    session = r.cookies["loyalty_console_session"]
    jar = {"loyalty_console_session": session}
    csrf = body["csrf_token"]

    def refresh(headers: dict[str, str], cookies: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{web_server}/console/session/refresh",
                          headers={**headers, **jar_header(cookies)})

    assert refresh({}, jar).status_code == 403
    assert refresh({"X-CSRF-Token": "forged"}, jar).status_code == 403
    assert refresh({"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}, jar
                   ).status_code == 403
    assert refresh({"X-CSRF-Token": csrf, "Origin": "https://evil.example"}, jar
                   ).status_code == 403
    ok = refresh({"X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-origin"}, jar)
    assert ok.status_code == 200, ok.text
    rotated = {"loyalty_console_session": ok.cookies["loyalty_console_session"]}
    assert rotated != jar
    # The page's <meta> carries the session's CSRF token, for a reload.
    page = httpx.get(f"{web_server}/console", headers=jar_header(rotated)).text
    assert f'name="csrf-token" content="{csrf}"' in page

    assert httpx.post(f"{web_server}/console/session/logout", headers=jar_header(rotated)
                      ).status_code == 403
    out = httpx.post(f"{web_server}/console/session/logout",
                     headers={"X-CSRF-Token": csrf, **jar_header(rotated)})
    assert out.status_code == 204 and "Max-Age=0" in out.headers["set-cookie"]
    dead = refresh({"X-CSRF-Token": csrf}, rotated)
    assert dead.status_code == 401  # the whole family is revoked

    # Not on loopback (behind a proxy, say), the cookie is Secure.
    r = httpx.post(f"{web_server}/console/session", json=login,
                   headers={"Host": "console.example.com"})
    assert r.status_code == 200 and "Secure" in r.headers["set-cookie"]


def test_logout_ends_the_session_in_every_tab_and_no_token_is_stored_in_the_page(
        api: Api, tabs: OpenTab) -> None:
    shop = make_shop(api, stores=[OPERA])
    tab = tabs()
    sign_in(tab.page, shop.manager_email)
    expect(tab.page.get_by_role("heading", name="Stores and zones")).to_be_visible()
    stored: dict[str, Any] = tab.page.evaluate(
        "() => ({local: JSON.stringify(localStorage), session: JSON.stringify(sessionStorage),"
        " cookies: document.cookie})")
    assert "eyJ" not in str(stored)  # no JWT where scripts could read it
    second = tab.context.new_page()
    second.goto("/console#/campaigns")
    expect(second.get_by_role("heading", name="Campaigns", exact=True)).to_be_visible()
    tab.page.get_by_role("button", name="Log out").click()
    expect(tab.page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    expect(second.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    second.reload()
    expect(second.get_by_role("heading", name="Sign in to the console")).to_be_visible()


def test_pages_load_with_no_network_but_loopback_and_carry_the_csp(
        api: Api, web_server: str, tabs: OpenTab) -> None:
    shop = make_shop(api, stores=[OPERA, LOUVRE])
    for path in ("/console", "/till"):
        r = httpx.get(f"{web_server}{path}")
        assert r.status_code == 200
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["cache-control"] == "no-store"
        assert "<script>" not in r.text and " style=" not in r.text  # nothing inline
    tab = tabs()
    violations: list[str] = []
    tab.page.on("console", lambda m: violations.append(m.text)
                if "Content Security Policy" in m.text else None)
    sign_in(tab.page, shop.manager_email)
    expect(tab.page.locator("#stores-table")).to_contain_text("LOUVRE")
    # Zones are vectors: they draw with no tile at all.
    expect(tab.page.locator("#stores-map path.leaflet-interactive")).to_have_count(2)
    for name in ("Campaigns", "Results", "Weather"):
        tab.page.get_by_role("link", name=name).click()
        expect(tab.page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    assert tab.outside, "the map asked for tiles"
    assert all(u.startswith("https://tile.openstreetmap.org/") for u in tab.outside)
    till = tabs(width=390, height=844)
    sign_in(till.page, shop.staff_email, "/till")
    expect(till.page.get_by_role("button", name="Scan the card")).to_be_visible()
    assert till.outside == []
    assert violations == [] and tab.errors == [] and till.errors == []
    assets = tab.page.evaluate("""() => [...document.querySelectorAll('script[src], link[href]')]
        .map(e => e.src || e.href)""")
    assert assets and all(a.startswith(f"{web_server}/static/") for a in assets), assets
