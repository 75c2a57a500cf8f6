"""Logging in (the token typed into a form opens a session cookie) and logging out."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from console import csrf
from console.auth import SESSION_COOKIE, LoginThrottle, Sessions, cookie_value, token_matches
from console.views import Views, first, principal_of, read_form


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of the console only, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/events"
    return target


class Login:
    def __init__(self, views: Views, sessions: Sessions, token: str, throttle: LoginThrottle | None = None) -> None:
        self.views = views
        self.sessions = sessions
        self._token = token
        self.throttle = throttle or LoginThrottle()

    def routes(self) -> list[Route]:
        return [
            Route("/login", self.form, methods=["GET"]),
            Route("/login", self.submit, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
        ]

    def _form(self, request: Request, next_path: str, error: str | None = None, status_code: int = 200) -> Response:
        nonce = csrf.new_login_nonce()
        token = csrf.login_token(self.views.key, nonce)
        response = self.views.render(
            request, "login.html", status_code, login_csrf=token, next_path=next_path, error=error
        )
        response.set_cookie(
            csrf.LOGIN_COOKIE,
            nonce,
            max_age=csrf.LOGIN_COOKIE_S,
            path="/login",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def form(self, request: Request) -> Response:
        return self._form(request, safe_next(request.query_params.get("next")))

    async def submit(self, request: Request) -> Response:
        fields = await read_form(request)
        next_path = safe_next(first(fields, "next"))
        nonce = request.cookies.get(csrf.LOGIN_COOKIE, "")
        given_csrf = first(fields, csrf.FIELD)
        if not nonce or not csrf.valid(csrf.login_token(self.views.key, nonce), given_csrf):
            return self._form(request, next_path, "The form had expired: log in again.", 403)
        client = request.client.host if request.client else "-"
        now = time.monotonic()
        wait_s = self.throttle.blocked_for(client, now)
        if wait_s > 0:
            return self._form(request, next_path, f"Too many failed logins: try again in {wait_s:.0f} s.", 429)
        if not token_matches((first(fields, "token") or "").strip(), self._token):
            self.throttle.failed(client, now)
            return self._form(request, next_path, "That is not the console's token (CONSOLE_TOKEN).", 401)
        self.throttle.succeeded(client)
        session_id = await self.sessions.open()
        expires_at = int(time.time()) + self.sessions.lifetime_s
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            cookie_value(self.views.key, session_id, expires_at),
            max_age=self.sessions.lifetime_s,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        response.delete_cookie(csrf.LOGIN_COOKIE, path="/login")
        return response

    async def logout(self, request: Request) -> Response:
        await self.views.form(request)
        principal = principal_of(request)
        if principal is not None and principal.session_id is not None:
            await self.sessions.close(principal.session_id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response
