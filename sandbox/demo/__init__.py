"""`crmflow demo`: the whole flow on loopback against the sandbox (run.py), told as a Zoho and a HubSpot story."""
