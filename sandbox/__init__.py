"""The CRM sandbox: Zoho CRM (zoho/) and HubSpot (hubspot/) emulated on one host, with what both use at the top."""
