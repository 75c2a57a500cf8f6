"""The Zoho CRM half of the sandbox: accounts server (OAuth), CRM API, notification channels and callbacks."""
