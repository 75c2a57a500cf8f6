"""Which URLs are the real CRMs', and Zoho's data centres."""

from __future__ import annotations

from crmflow.doctor.hosts import is_real_crm, zoho_accounts_dc, zoho_api_dc


def test_zoho_data_centres() -> None:
    assert zoho_accounts_dc("https://accounts.zoho.eu") == "EU"
    assert zoho_accounts_dc("https://accounts.zohocloud.ca/") == "CA"
    assert zoho_api_dc("https://www.zohoapis.com.au") == "AU"
    assert zoho_api_dc("https://sandbox.zohoapis.com") == "US"
    assert zoho_api_dc("https://www.zohoapis.com") == "US"
    assert zoho_api_dc("http://sandbox:8001") is None


def test_real_hosts_and_the_sandbox() -> None:
    assert is_real_crm("https://api.hubapi.com")
    assert is_real_crm("https://www.zohoapis.eu")
    assert not is_real_crm("http://127.0.0.1:8001")
    assert not is_real_crm("http://sandbox:8001")
    assert not is_real_crm("https://zohoapis.com.evil.example")
