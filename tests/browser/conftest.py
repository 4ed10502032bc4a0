"""Fixtures of the browser tests: one real server (uvicorn, its own database migrated from the
session's template) and one Chromium per test module. Each test makes its own program,
accounts and members through the API, so tests do not see each other's data."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright
from support.browser import Api, OpenTab, Tab, launch, open_tab
from support.realserver import running_server

from api.auth.keys import load_or_create
from api.auth.tokens import TokenService


@pytest.fixture(scope="session")
def web_db(pg_server: str, template_dsn: str) -> Iterator[str]:
    """A database of its own for the browser tests' server, copied from the template."""
    name = f"web_{uuid.uuid4().hex[:10]}"
    template = urlsplit(template_dsn).path.lstrip("/")

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(pg_server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY'))
    try:
        yield urlunsplit(urlsplit(pg_server)._replace(path=f"/{name}"))
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def web_server(web_db: str, keys_file: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("web")
    with running_server(web_db, keys_file, tmp, workers=1,
                        env={"LOYALTY_QR_TOKEN_TTL_S": "600"}) as base:
        yield base


@pytest.fixture(scope="session")
def web_tokens(keys_file: Path) -> TokenService:
    return TokenService(load_or_create(keys_file), issuer="loyalty-geo", access_ttl_s=900,
                        refresh_ttl_s=3600, card_ttl_s=600)


@pytest.fixture(scope="module")
def playwright(web_server: str) -> Iterator[Playwright]:
    """Per module, and after the server: Playwright's sync API keeps an event loop running
    in this thread while it lives, where asyncio.run (fixtures) and async tests cannot run."""
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = launch(playwright)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def api(web_server: str, web_tokens: TokenService) -> Iterator[Api]:
    client = Api(web_server, web_tokens)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def tabs(browser: Browser, web_server: str) -> Iterator[OpenTab]:
    """Opens tabs (each in a context of its own) on the module's browser, or on the one
    given; closes their contexts after the test, which also deletes their downloads."""
    opened: list[Tab] = []

    def open_(*, width: int = 1280, height: int = 900, browser: Browser | None = None,
              **context_args: Any) -> Tab:
        tab = open_tab(browser or default, web_server, width=width, height=height,
                       **context_args)
        opened.append(tab)
        return tab

    default = browser
    try:
        yield open_
    finally:
        for tab in opened:
            owner = tab.context.browser
            if owner is None or owner.is_connected():  # (a test's own browser may be gone)
                tab.context.close()
