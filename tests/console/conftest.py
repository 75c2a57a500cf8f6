"""The console app on real Redis, reached through httpx's ASGI transport, with a login helper."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from arq.connections import ArqRedis

from console.app import create_app
from console.config import ConsoleConfig

TOKEN = "test-console-token-0123456789"
BASE = "http://console.test"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/json"}


def console_config(redis_url: str, **settings: object) -> ConsoleConfig:
    return ConsoleConfig.model_validate({"CONSOLE_TOKEN": TOKEN, "REDIS_URL": redis_url} | settings)


@pytest.fixture
async def client(redis: ArqRedis, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the console, not logged in."""
    app = create_app(console_config(redis_url), redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http


def form_token(page: str, name: str = "csrf") -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match is not None, f"no {name} field in the page"
    return match[1]


async def log_in(client: httpx.AsyncClient, token: str = TOKEN, next_path: str = "/deadletters") -> httpx.Response:
    """Fill in and send the login form, as a browser does."""
    page = await client.get("/login", params={"next": next_path}, headers=HTML)
    data = {"csrf": form_token(page.text), "next": next_path, "token": token}
    return await client.post("/login", data=data, headers=HTML)


async def csrf_of(client: httpx.AsyncClient) -> str:
    """The logged-in session's CSRF token, from one of its pages."""
    return form_token((await client.get("/deadletters", headers=HTML)).text)
