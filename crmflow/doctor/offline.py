"""The offline checks: settings, each source on or off and why, combinations that cannot work, the rules. Pure.

Inputs are what the entry point read: the settings as set (`env`: environment over .env, by upper-case name,
empty values left out), the lines each role's settings class refused (crmflow.settings.describe) and what
loading the rules gave. Values are compared or tested, never put in a finding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Literal
from urllib.parse import urlsplit

import httpx
from redis.connection import parse_url

from crmflow.doctor.findings import Finding, fail, ok, warn
from crmflow.doctor.hosts import zoho_accounts_dc, zoho_api_dc

Role = Literal["receiver", "worker"]
Env = Mapping[str, str]

# What turns each source on, per role (receiver/config.py, workers/config.py).
NEEDS: dict[tuple[Role, str], tuple[str, ...]] = {
    ("receiver", "zoho"): ("ZOHO_NOTIFY_TOKEN",),
    ("receiver", "hubspot"): ("HUBSPOT_CLIENT_SECRET", "PUBLIC_BASE_URL"),
    ("worker", "zoho"): ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN"),
    ("worker", "hubspot"): ("HUBSPOT_ACCESS_TOKEN",),
}
# Only the first of a receiver's needs switches it on; the others are then required (a settings error).
SWITCH: dict[tuple[Role, str], tuple[str, ...]] = {**NEEDS, ("receiver", "hubspot"): ("HUBSPOT_CLIENT_SECRET",)}
DEFAULTS = {
    "ZOHO_API_DOMAIN": "https://www.zohoapis.com",
    "ZOHO_ACCOUNTS_URL": "https://accounts.zoho.com",
    "ZOHO_CHANNEL_CHECK_S": "3600",
    "RULES_PATH": "rules/default.yaml",
}
CRMS = {"zoho": "Zoho", "hubspot": "HubSpot"}
_NAMES = re.compile(r"^([A-Z][A-Z0-9_]*(?:, [A-Z][A-Z0-9_]*)*): (.+)$")
WEBHOOK_PATHS = ("/webhooks/zoho", "/webhooks/hubspot", "/webhooks")
# redis-py's own reading of a Redis URL (untyped there): raises ValueError for what Redis.from_url refuses.
parse_redis_url: Callable[[str], dict[str, object]] = parse_url
HTTP_URLS = ("PUBLIC_BASE_URL", "ZOHO_API_DOMAIN", "ZOHO_ACCOUNTS_URL", "HUBSPOT_API_BASE")


def _missing(env: Env, names: Sequence[str]) -> list[str]:
    return [name for name in names if not env.get(name)]


def is_on(env: Env, role: Role, crm: str) -> bool:
    """Whether `role` serves `crm` with these settings (a half-set source is on, and a settings error)."""
    return not _missing(env, SWITCH[(role, crm)]) if role == "receiver" else any(env.get(n) for n in NEEDS[(role, crm)])


def settings_findings(role: Role, errors: Sequence[str] | None) -> list[Finding]:
    """One failure per line the role's settings class refused (None: it accepted them all)."""
    check = f"{role} settings"
    if errors is None:
        return [ok(check, "every setting is valid")]
    found = []
    for text in errors:
        match = _NAMES.match(text)
        if match is None:
            found.append(fail(check, text, fix="see docs/configuration.md"))
            continue
        names, problem = match.group(1), match.group(2).removeprefix("Value error, ")
        unset = problem.startswith(("is not set", "not set"))
        fix = f"set {names}" if unset else f"correct {names} (docs/configuration.md)"
        found.append(fail(check, problem, setting=names, fix=fix))
    return found


def source_findings(env: Env) -> list[Finding]:
    """Each source on or off in each role, and why; a source on in the receiver but off in the workers fails
    (its notifications would all become dead letters); on in the workers only is a warning (sweeps only)."""
    found = []
    for crm, label in CRMS.items():
        for role in ("receiver", "worker"):
            names = SWITCH[(role, crm)]
            half = _missing(env, NEEDS[(role, crm)])
            if is_on(env, role, crm) and half:
                message = f"{label} is half configured in the {role}: {', '.join(half)} not set"
                given = ", ".join(n for n in NEEDS[(role, crm)] if n not in half)
                fix = f"set {', '.join(half)}, or unset {given} to turn {label} off"
                found.append(fail("sources", message, setting=", ".join(half), fix=fix))
            elif is_on(env, role, crm):
                found.append(ok("sources", f"{label} is on in the {role} ({', '.join(names)} set)"))
            else:
                missing = ", ".join(_missing(env, SWITCH[(role, crm)]))
                found.append(ok("sources", f"{label} is off in the {role}: {missing} not set"))
        found.extend(_consistency(env, crm, label))
    return found


def _consistency(env: Env, crm: str, label: str) -> list[Finding]:
    receiver, worker = is_on(env, "receiver", crm), is_on(env, "worker", crm)
    worker_missing = ", ".join(_missing(env, NEEDS[("worker", crm)]))
    receiver_missing = ", ".join(_missing(env, NEEDS[("receiver", crm)]))
    if receiver and not worker:
        return [
            fail(
                "sources",
                f"{label} is on in the receiver but off in the workers: every {label} notification would be "
                "queued and end as a dead letter",
                setting=worker_missing,
                fix=f"set {worker_missing} for the workers, or unset {', '.join(SWITCH[('receiver', crm)])} "
                f"to turn {label} off",
            )
        ]
    if worker and not receiver:
        return [
            warn(
                "sources",
                f"{label} is on in the workers but off in the receiver: no {label} notification is accepted, "
                "only sweeps find changes",
                setting=receiver_missing,
                fix=f"set {receiver_missing} for the receiver (nothing to do if this is intended)",
            )
        ]
    return []


def url_problem(url: str) -> str | None:
    """Why `url` is no http(s) URL with a host (None: it is one)."""
    try:
        parts = urlsplit(url)
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http:// or https:// URL with a host"
    return None


def url_findings(env: Env) -> list[Finding]:
    """Every URL setting that is set parses: REDIS_URL as redis-py reads it, the others as http(s) URLs. The
    other checks read only URLs that pass this one."""
    found = []
    redis_url = env.get("REDIS_URL")
    if redis_url is not None:
        try:
            parse_redis_url(redis_url)
        except ValueError:
            fix = "set REDIS_URL=redis://host:port/db (rediss:// for TLS, unix:///path for a socket)"
            found.append(fail("urls", "is not a valid Redis URL", setting="REDIS_URL", fix=fix))
    for name in HTTP_URLS:
        problem = url_problem(env[name]) if name in env else None
        if problem is not None:
            found.append(fail("urls", problem, setting=name, fix=f"correct {name} (docs/configuration.md)"))
    return found


def valid_urls(env: Env) -> dict[str, str]:
    """`env` without the http(s) URL settings that do not parse, for the checks that read them."""
    return {name: value for name, value in env.items() if name not in HTTP_URLS or url_problem(value) is None}


def public_url_findings(env: Env) -> list[Finding]:
    """PUBLIC_BASE_URL is the base, up to and excluding /webhooks/...: a full webhook URL there breaks both
    HubSpot's signatures and the Zoho channels' notify_url."""
    url = env.get("PUBLIC_BASE_URL")
    if url is None:
        return []
    path = urlsplit(url).path.rstrip("/")
    if path.endswith(WEBHOOK_PATHS):
        return [
            fail(
                "public URL",
                "ends with a /webhooks path: it must be the base URL, up to and excluding /webhooks/zoho or "
                "/webhooks/hubspot",
                setting="PUBLIC_BASE_URL",
                fix="remove the /webhooks/... part from PUBLIC_BASE_URL",
            )
        ]
    return []


def hubspot_secret_findings(env: Env) -> list[Finding]:
    """HUBSPOT_CLIENT_SECRET must be the app's client secret, not an access token (docs/hubspot.md: mixing the
    two up is a common mistake); a wrong secret otherwise shows only as every webhook refused with 401."""
    secret, token = env.get("HUBSPOT_CLIENT_SECRET"), env.get("HUBSPOT_ACCESS_TOKEN")
    if secret is None:
        return []
    fix = (
        "put the app's client secret (the app's Auth tab) in HUBSPOT_CLIENT_SECRET and its access token "
        "in HUBSPOT_ACCESS_TOKEN"
    )
    if secret.strip().startswith("pat-"):
        return [
            fail(
                "hubspot secret",
                "holds a private-app access token (pat-...), not the app's client secret: every webhook would "
                "fail the signature check",
                setting="HUBSPOT_CLIENT_SECRET",
                fix=fix,
            )
        ]
    if token is not None and secret.strip() == token.strip():
        return [
            fail(
                "hubspot secret",
                "is the same as HUBSPOT_ACCESS_TOKEN: webhooks are signed with the client secret, not the token",
                setting="HUBSPOT_CLIENT_SECRET, HUBSPOT_ACCESS_TOKEN",
                fix=fix,
            )
        ]
    return []


def zoho_dc_findings(env: Env) -> list[Finding]:
    """ZOHO_API_DOMAIN and ZOHO_ACCOUNTS_URL must be of the same Zoho data centre (when both are Zoho's)."""
    if not is_on(env, "worker", "zoho"):
        return []
    accounts = zoho_accounts_dc(env.get("ZOHO_ACCOUNTS_URL", DEFAULTS["ZOHO_ACCOUNTS_URL"]))
    api = zoho_api_dc(env.get("ZOHO_API_DOMAIN", DEFAULTS["ZOHO_API_DOMAIN"]))
    if accounts is None or api is None or accounts == api:
        return []
    return [
        fail(
            "zoho data centre",
            f"ZOHO_API_DOMAIN is in Zoho's {api} data centre, ZOHO_ACCOUNTS_URL in its {accounts} one: tokens "
            "from one are refused by the other",
            setting="ZOHO_API_DOMAIN, ZOHO_ACCOUNTS_URL",
            fix="set both for your data centre (docs/zoho-crm.md lists them); an unset one defaults to the US",
        )
    ]


def upkeep_findings(env: Env) -> list[Finding]:
    """Zoho watch-channel upkeep by the workers: on, or off and why (a channel lapses within a week)."""
    if not is_on(env, "worker", "zoho"):
        return []
    ids = [part for part in env.get("ZOHO_CHANNEL_IDS", "").split(",") if part.strip()]
    if not ids:
        return [
            warn(
                "channel upkeep",
                "is not set: the receiver accepts callbacks of any channel carrying the token, and no worker "
                "keeps a channel alive (a channel lasts at most a week)",
                setting="ZOHO_CHANNEL_IDS",
                fix="set ZOHO_CHANNEL_IDS to your watch channel id(s) (docs/operations.md#connecting-zoho)",
            )
        ]
    if not env.get("PUBLIC_BASE_URL"):
        return [
            warn(
                "channel upkeep",
                "is not set, so the workers do not keep the channels in ZOHO_CHANNEL_IDS alive; they lapse "
                "within a week unless renewed with `crmflow zoho renew`",
                setting="PUBLIC_BASE_URL",
                fix="set PUBLIC_BASE_URL to the receiver's public URL",
            )
        ]
    check_s = env.get("ZOHO_CHANNEL_CHECK_S", DEFAULTS["ZOHO_CHANNEL_CHECK_S"]).strip()
    if check_s == "0":
        return [
            warn(
                "channel upkeep",
                "is 0, so the workers do not keep the channels alive; they lapse within a week unless renewed "
                "with `crmflow zoho renew`",
                setting="ZOHO_CHANNEL_CHECK_S",
                fix="unset ZOHO_CHANNEL_CHECK_S (hourly checks), or renew by hand at least weekly",
            )
        ]
    count = f"{len(ids)} channel{'' if len(ids) == 1 else 's'}"
    return [ok("channel upkeep", f"the workers keep {count} alive, checking every {check_s} s")]


def rules_findings(path: str, outcome: int | Sequence[str]) -> list[Finding]:
    """The rule file(s) at RULES_PATH: how many rules loaded, or one failure per problem."""
    if isinstance(outcome, int):
        return [ok("rules", f"{outcome} rule{'' if outcome == 1 else 's'} from {path}", setting="RULES_PATH")]
    fix = (
        f"correct the rules (`crmflow rules check {path}`; for custom fields, `--online`), or point RULES_PATH at "
        "the right file"
    )
    return [fail("rules", problem, setting="RULES_PATH", fix=fix) for problem in outcome]


def role_findings(role: Role, env: Env) -> list[Finding]:
    """What a receiver or a worker checks at start-up beyond its settings class: fast, no network."""
    parsed = valid_urls(env)
    if role == "receiver":
        return [*public_url_findings(parsed), *hubspot_secret_findings(env)]
    return [*public_url_findings(parsed), *zoho_dc_findings(parsed), *upkeep_findings(env)]


def offline_findings(
    env: Env,
    *,
    receiver_errors: Sequence[str] | None,
    worker_errors: Sequence[str] | None,
    rules_path: str,
    rules: int | Sequence[str],
) -> list[Finding]:
    """Every offline check, in the order `crmflow doctor` shows them (a setting already failed by its role's
    settings class is not failed again by the sources or URL checks; a URL that does not parse is left out of
    the checks that read it)."""
    parsed = valid_urls(env)
    found = [
        *settings_findings("receiver", receiver_errors),
        *settings_findings("worker", worker_errors),
        *url_findings(env),
        *source_findings(env),
        *public_url_findings(parsed),
        *hubspot_secret_findings(env),
        *zoho_dc_findings(parsed),
        *upkeep_findings(env),
        *rules_findings(rules_path, rules),
    ]
    named = {f.setting for f in found if f.status == "fail" and f.check.endswith(" settings")}
    return [f for f in found if not (f.check in ("sources", "urls") and f.status == "fail" and f.setting in named)]
