"""Which URLs are the real CRMs' (and which Zoho data centre they belong to). Pure.

From Zoho's data-centre table (docs/zoho-crm.md, "OAuth"): each DC has an accounts server and an API domain;
`sandbox.zohoapis.*` and `developer.zohoapis.*` are API domains of the same DCs. HubSpot's API is
`api.hubapi.com`. Any other host (127.0.0.1, `sandbox` in the compose file) is taken for the sandbox.
"""

from __future__ import annotations

from urllib.parse import urlsplit

ZOHO_ACCOUNTS = {
    "accounts.zoho.com": "US",
    "accounts.zoho.eu": "EU",
    "accounts.zoho.in": "IN",
    "accounts.zoho.com.au": "AU",
    "accounts.zoho.jp": "JP",
    "accounts.zoho.com.cn": "CN",
    "accounts.zohocloud.ca": "CA",
    "accounts.zoho.sa": "SA",
}
ZOHO_API_DOMAINS = {
    "zohoapis.com": "US",
    "zohoapis.eu": "EU",
    "zohoapis.in": "IN",
    "zohoapis.com.au": "AU",
    "zohoapis.jp": "JP",
    "zohoapis.com.cn": "CN",
    "zohoapis.ca": "CA",
    "zohoapis.sa": "SA",
}
HUBSPOT_HOSTS = ("hubapi.com",)


def host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _under(name: str, domain: str) -> bool:
    return name == domain or name.endswith(f".{domain}")


def zoho_accounts_dc(url: str) -> str | None:
    """The DC of a Zoho accounts server URL, or None when it is not one."""
    return ZOHO_ACCOUNTS.get(host(url))


def zoho_api_dc(url: str) -> str | None:
    """The DC of a Zoho API domain URL, or None when it is not one."""
    name = host(url)
    return next((dc for domain, dc in ZOHO_API_DOMAINS.items() if _under(name, domain)), None)


def is_hubspot(url: str) -> bool:
    name = host(url)
    return any(_under(name, domain) for domain in HUBSPOT_HOSTS)


def is_real_crm(url: str) -> bool:
    """Whether `url` is Zoho's or HubSpot's own (else, for crmflow, the sandbox or a test double)."""
    return zoho_accounts_dc(url) is not None or zoho_api_dc(url) is not None or is_hubspot(url)
