"""The HubSpot half of the sandbox: a portal's appointments and notes API, its limits, and signed webhook batches."""
