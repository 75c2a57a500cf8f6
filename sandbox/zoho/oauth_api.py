"""`POST /oauth/v2/token`: Zoho Accounts' refresh grant over HTTP (parameters in the query or a form body)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from sandbox.responses import Endpoint, json_response
from sandbox.runtime import SandboxRuntime
from sandbox.zoho.oauth import TOKEN_LIFETIME, OAuthError


async def _params(request: Request) -> dict[str, str]:
    """Query parameters (Zoho's docs) overlaid by an urlencoded body (Zoho's SDK)."""
    params = dict(request.query_params)
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        body = (await request.body()).decode("utf-8", errors="replace")
        params.update(parse_qsl(body, keep_blank_values=True))
    return params


def token_endpoint(runtime: SandboxRuntime) -> Endpoint:
    """The endpoint function bound to one runtime."""

    async def token(request: Request) -> Response:
        try:
            issued = runtime.tokens.grant(await _params(request), runtime.now())
        except OAuthError as refused:
            return json_response(refused.body, refused.status)
        return json_response(
            {
                "access_token": issued.token,
                # One host plays both the accounts server and the API domain.
                "api_domain": str(request.base_url).rstrip("/"),
                "token_type": "Bearer",
                "expires_in": int(TOKEN_LIFETIME.total_seconds()),
            }
        )

    return token
