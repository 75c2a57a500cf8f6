"""Online Zoho checks: the refresh grant works, and the token has every scope crmflow needs. I/O at the edge.

A refresh grant (`POST {ZOHO_ACCOUNTS_URL}/oauth/v2/token`) checks ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET and
ZOHO_REFRESH_TOKEN together. Each grant counts towards Zoho's 10 refreshes per 10 minutes and makes one more
live token (the 16th invalidates the oldest), so when Redis answers the doctor takes the workers' shared token
through workers/crm/zoho_auth.py (its lock and its refresh budget): it refreshes only when no token for these
credentials is cached, and that refresh is spent from the workers' budget and shared with them. The token is
cached under a digest of the client secret and refresh token, so a wrong ZOHO_CLIENT_SECRET (or refresh token)
never finds the workers' token and is still put to Zoho. With the budget spent and nothing cached, the grant is
reported as not checked. Without Redis the doctor makes one grant of its own and drops its token.

Scopes are checked by calls that change nothing, one per scope crmflow needs (docs/zoho-crm.md, "OAuth"):
Zoho answers a call outside the granted scopes with 401 OAUTH_SCOPE_MISMATCH (its error tables). The reads
(GET one page of one field) are plain. The writes send an empty list (`{"data": []}`, `{"watch": []}`), which
Zoho refuses with a 400 and creates nothing. Whether Zoho checks the scope before the body is UNCONFIRMED: if
it checks the body first, a missing write scope is not seen this way. So, where the token answer carries a
`scope` key (seen in some Zoho products' docs, UNCONFIRMED for CRM), the granted scopes it lists are checked
too; either way a missing scope that Zoho reveals fails the check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.exceptions import RedisError

from crmflow.doctor.findings import Finding, empty_request, fail, ok, skip, warn
from workers.crm.zoho_auth import REFRESH_BUDGET, REFRESH_WINDOW_S, ZohoTokens
from workers.errors import CrmAuthError, CrmRateLimitedError, CrmTransientError

CLIENT = "ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET"
SCOPES_FIX = (
    "generate a new refresh token (access_type=offline) with the scopes ZohoCRM.modules.appointments.READ, "
    "ZohoCRM.modules.appointments_rescheduled_history.ALL, ZohoCRM.notifications.ALL and (for rules naming custom "
    "fields) ZohoCRM.settings.fields.READ and put it in ZOHO_REFRESH_TOKEN (docs/operations.md#connecting-zoho)"
)


@dataclass(frozen=True)
class ScopeProbe:
    """A call that needs `scope` and changes nothing."""

    scope: str
    what: str
    method: str
    path: str
    params: dict[str, str] | None = None
    body: Any = None
    # Needed only by some rules (None: by every deployment); a token without it is then a warning, saying this.
    only_for: str | None = None


HISTORY = "/crm/v7/Appointments_Rescheduled_History__s"
WATCH = "/crm/v7/actions/watch"
WATCH_PROBE = "ZohoCRM.notifications.READ"
PROBES = (
    ScopeProbe(
        "ZohoCRM.modules.appointments.READ",
        "read appointments",
        "GET",
        "/crm/v7/Appointments__s",
        {"fields": "id", "per_page": "1"},
    ),
    ScopeProbe(
        "ZohoCRM.modules.appointments_rescheduled_history.READ",
        "read the history module",
        "GET",
        HISTORY,
        {"fields": "id", "per_page": "1"},
    ),
    ScopeProbe(
        "ZohoCRM.modules.appointments_rescheduled_history.CREATE",
        "write the history module",
        "POST",
        HISTORY,
        body={"data": []},
    ),
    ScopeProbe(WATCH_PROBE, "list watch channels", "GET", WATCH),
    ScopeProbe("ZohoCRM.notifications.CREATE", "enable watch channels", "POST", WATCH, body={"watch": []}),
    ScopeProbe("ZohoCRM.notifications.UPDATE", "renew watch channels", "PATCH", WATCH, body={"watch": []}),
    ScopeProbe(
        "ZohoCRM.settings.fields.READ",
        "read the field list of Appointments__s",
        "GET",
        "/crm/v7/settings/fields",
        {"module": "Appointments__s"},
        only_for="rules that name custom fields (`crmflow rules check --online`, worker start-up)",
    ),
)


@dataclass(frozen=True)
class Grant:
    """A working access token, with what the token answer said of the API domain and the scopes; `cached`: the
    workers' shared token for these credentials, no new one made."""

    access_token: str
    api_domain: str | None
    scope: str | None
    cached: bool = False


def _body(content: bytes) -> Any:
    try:
        return orjson.loads(content) if content else {}
    except orjson.JSONDecodeError:
        return None


def _origin(url: str) -> str:
    """scheme://host:port, to compare two spellings of one base URL ("" when it is no URL)."""
    try:
        parts = httpx.URL(url)
    except httpx.InvalidURL:
        return ""
    return f"{parts.scheme}://{parts.host}:{parts.port or (443 if parts.scheme == 'https' else 80)}".lower()


def read_grant(status: int, body: Any) -> Grant | Finding:
    """The grant in a token answer, or the finding that says which setting is at fault. Zoho answers most
    refusals with HTTP 200 and an `error` key, so the body decides (docs/zoho-crm.md, "Refresh grant")."""
    check = "zoho refresh token"
    if status == 429 or status >= 500:
        return warn(
            check, f"could not be checked: Zoho's accounts server answered HTTP {status}", fix="run again later"
        )
    if not isinstance(body, dict):
        return fail(
            check,
            f"is not Zoho's accounts server: /oauth/v2/token answered HTTP {status} without a JSON body",
            setting="ZOHO_ACCOUNTS_URL",
            fix="set ZOHO_ACCOUNTS_URL to your data centre's accounts server, e.g. https://accounts.zoho.eu",
        )
    token = body.get("access_token")
    if isinstance(token, str) and token:
        domain, scope = body.get("api_domain"), body.get("scope")
        return Grant(token, domain if isinstance(domain, str) else None, scope if isinstance(scope, str) else None)
    error = str(body.get("error") or f"HTTP {status}, no access_token")
    if error == "invalid_client":
        return fail(
            check,
            "Zoho refused the client (invalid_client): ZOHO_CLIENT_ID or ZOHO_CLIENT_SECRET is wrong, or the "
            "client belongs to another data centre than ZOHO_ACCOUNTS_URL",
            setting=CLIENT,
            fix="copy the client id and secret from the Zoho API console into ZOHO_CLIENT_ID and ZOHO_CLIENT_SECRET, "
            "and check ZOHO_ACCOUNTS_URL",
        )
    if error == "invalid_client_secret":
        return fail(
            check,
            "Zoho refused the client secret (invalid_client_secret)",
            setting="ZOHO_CLIENT_SECRET",
            fix="copy the client secret from the Zoho API console into ZOHO_CLIENT_SECRET",
        )
    if error == "invalid_code":
        return fail(
            check,
            "Zoho refused the refresh token (invalid_code): it is revoked, mistyped, or was issued to another client",
            setting="ZOHO_REFRESH_TOKEN",
            fix=SCOPES_FIX,
        )
    if error == "Access Denied":
        return warn(
            check,
            "could not be checked: Zoho throttles refreshes (at most 10 in 10 minutes)",
            setting="ZOHO_REFRESH_TOKEN",
            fix="run again in 10 minutes",
        )
    return fail(
        check,
        f"Zoho refused the refresh grant ({error})",
        setting=f"{CLIENT}, ZOHO_REFRESH_TOKEN",
        fix="check the three against the Zoho API console",
    )


def api_domain_findings(grant: Grant, api_domain: str) -> list[Finding]:
    """Zoho's token answer names the account's API domain; crmflow calls ZOHO_API_DOMAIN."""
    issued = (
        "the workers' access token for these credentials is cached (Zoho issued it to them; no new token made)"
        if grant.cached
        else "Zoho issued an access token"
    )
    granted = ok("zoho refresh token", issued, setting=f"{CLIENT}, ZOHO_REFRESH_TOKEN")
    if grant.api_domain is None or _origin(grant.api_domain) == _origin(api_domain):
        return [granted]
    return [
        granted,
        warn(
            "zoho api domain",
            f"Zoho says this account's API domain is {grant.api_domain}, which is not ZOHO_API_DOMAIN",
            setting="ZOHO_API_DOMAIN",
            fix=f"set ZOHO_API_DOMAIN={grant.api_domain}",
        ),
    ]


def _covering(scope: str) -> set[str]:
    area, _, operation = scope.rpartition(".")
    names = {scope, f"{area}.ALL"} | ({f"{area}.WRITE"} if operation != "READ" else set())
    if area.startswith("ZohoCRM.modules."):
        names.add("ZohoCRM.modules.ALL")
    if area.startswith("ZohoCRM.settings."):
        names.add("ZohoCRM.settings.ALL")
    return {name.lower() for name in names}


def granted_scope_findings(scope_field: str | None) -> list[Finding]:
    """The needed scopes the token answer's `scope` key leaves out (nothing when it has no such key); one only some
    rules need is left to its probe."""
    if scope_field is None:
        return []
    granted = {part.lower() for part in scope_field.replace(",", " ").split()}
    return [
        _lacking(probe, f"is not among the scopes Zoho's token answer lists; crmflow needs it to {probe.what}")
        for probe in PROBES
        if probe.only_for is None and granted.isdisjoint(_covering(probe.scope))
    ]


def _lacking(probe: ScopeProbe, message: str) -> Finding:
    """A needed scope the token lacks: a failure, or a warning for one only some rules need."""
    check = f"zoho scope {probe.scope}"
    if probe.only_for is not None:
        return warn(check, f"{message}, for {probe.only_for}", setting="ZOHO_REFRESH_TOKEN", fix=SCOPES_FIX)
    return fail(check, message, setting="ZOHO_REFRESH_TOKEN", fix=SCOPES_FIX)


def probe_finding(probe: ScopeProbe, status: int, body: Any) -> tuple[Finding, bool]:
    """What a probe's answer means, and whether the next probes can still run (False: the API domain or the
    token is wrong for every call)."""
    check = f"zoho scope {probe.scope}"
    code = str(body.get("code", "")) if isinstance(body, dict) else ""
    if status == 401 and code == "OAUTH_SCOPE_MISMATCH":
        message = f"the refresh token lacks it (401 OAUTH_SCOPE_MISMATCH); crmflow needs it to {probe.what}"
        return _lacking(probe, message), True
    if status == 401:
        message = (
            f"Zoho's API refused an access token just issued by ZOHO_ACCOUNTS_URL ({code or 'HTTP 401'}): the two "
            "are probably of different data centres"
        )
        fix = "set ZOHO_API_DOMAIN and ZOHO_ACCOUNTS_URL for the same data centre (docs/zoho-crm.md)"
        return fail(check, message, setting="ZOHO_API_DOMAIN", fix=fix), False
    if status == 404 or body is None:
        message = f"is not Zoho's CRM API: {probe.method} {probe.path} answered HTTP {status} ({code or 'no code'})"
        return fail(
            check, message, setting="ZOHO_API_DOMAIN", fix="set ZOHO_API_DOMAIN to your data centre's API domain"
        ), False
    if status == 403:
        message = f"the Zoho user who granted the token may not {probe.what} ({code or 'HTTP 403'})"
        fix = "give that user's profile the permission in Zoho, or generate the token as a user who has it"
        return fail(check, message, setting="ZOHO_REFRESH_TOKEN", fix=fix), True
    if status == 429 or status >= 500:
        return warn(check, f"could not be checked: Zoho answered HTTP {status}", fix="run again later"), True
    if probe.body is not None:
        return ok(check, f"granted (to {probe.what}; {empty_request(status)})"), True
    return ok(check, f"granted (to {probe.what})"), True


def _unreachable(accounts_url: str, error: str) -> Finding:
    message = f"cannot reach Zoho's accounts server at {httpx.URL(accounts_url).host} ({error})"
    fix = "check ZOHO_ACCOUNTS_URL and this host's network"
    return fail("zoho refresh token", message, setting="ZOHO_ACCOUNTS_URL", fix=fix)


async def own_grant(
    http: httpx.AsyncClient, accounts_url: str, client_id: str, client_secret: SecretStr, refresh_token: SecretStr
) -> Grant | Finding:
    """One refresh grant of the doctor's own (no Redis to share the workers' token through)."""
    form = {
        "grant_type": "refresh_token",
        "client_id": client_id,
        "client_secret": client_secret.get_secret_value(),
        "refresh_token": refresh_token.get_secret_value(),
    }
    try:
        answer = await http.post(f"{accounts_url.rstrip('/')}/oauth/v2/token", data=form)
    except httpx.HTTPError as exc:
        return _unreachable(accounts_url, type(exc).__name__)
    return read_grant(answer.status_code, _body(answer.content))


async def shared_grant(tokens: ZohoTokens, accounts_url: str) -> Grant | Finding:
    """The workers' shared token for these credentials, refreshed (within their budget) only if none is cached;
    a refusal becomes the finding read_grant makes of Zoho's answer."""
    check = "zoho refresh token"
    try:
        token = await tokens.shared()
    except CrmRateLimitedError as exc:
        if exc.code != "REFRESH_BUDGET":
            return read_grant(200, {"error": "Access Denied"})
        message = (
            f"could not be checked: no token for these credentials is cached and the workers' refresh budget "
            f"({REFRESH_BUDGET} in {REFRESH_WINDOW_S} s) is spent"
        )
        fix = f"run again in {exc.retry_after_s or REFRESH_WINDOW_S:.0f} s"
        return warn(check, message, setting=f"{CLIENT}, ZOHO_REFRESH_TOKEN", fix=fix)
    except CrmAuthError as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        return read_grant(int(details.get("status", 200)), {"error": details.get("error", exc.message)})
    except CrmTransientError as exc:
        if exc.code == "OAUTH_UNREACHABLE":
            return _unreachable(accounts_url, exc.message.rpartition(": ")[2])
        details = exc.details if isinstance(exc.details, dict) else {}
        return read_grant(int(details.get("status", 200)), None)
    except (RedisError, OSError) as exc:
        message = f"could not be checked: Redis failed while sharing the workers' token ({type(exc).__name__})"
        return warn(check, message, setting="REDIS_URL", fix="check Redis, then run again")
    return Grant(token.access_token, token.api_domain, token.scope, cached=token.cached)


async def check_zoho(
    http: httpx.AsyncClient,
    *,
    accounts_url: str,
    api_domain: str,
    client_id: str,
    client_secret: SecretStr,
    refresh_token: SecretStr,
    redis: Redis | None = None,
) -> tuple[list[Finding], Any]:
    """The refresh grant and every scope probe; also the GET /actions/watch answer (None when not read).
    `redis`: a Redis that answered, to share the workers' token through (None: a grant of the doctor's own)."""
    if redis is None:
        grant = await own_grant(http, accounts_url, client_id, client_secret, refresh_token)
    else:
        tokens = ZohoTokens(
            redis,
            http,
            accounts_url=accounts_url,
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
        )
        grant = await shared_grant(tokens, accounts_url)
    if isinstance(grant, Finding):
        return [grant, skip("zoho scopes", "not checked: no access token")], None
    found = [*api_domain_findings(grant, api_domain), *granted_scope_findings(grant.scope)]
    headers = {"Authorization": f"Zoho-oauthtoken {grant.access_token}"}
    watch_body: Any = None
    for probe in PROBES:
        url = f"{api_domain.rstrip('/')}{probe.path}"
        try:
            response = await http.request(probe.method, url, params=probe.params, json=probe.body, headers=headers)
        except httpx.HTTPError as exc:
            message = f"cannot reach Zoho's API at {httpx.URL(api_domain).host} ({type(exc).__name__})"
            found.append(fail("zoho scopes", message, setting="ZOHO_API_DOMAIN", fix="check ZOHO_API_DOMAIN"))
            return found, None
        body = _body(response.content)
        finding, go_on = probe_finding(probe, response.status_code, body)
        found.append(finding)
        if not go_on:
            return found, None
        if probe.scope == WATCH_PROBE and response.status_code in (200, 204):
            watch_body = body
    return found, watch_body
