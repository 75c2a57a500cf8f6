"""Which request paths belong to the HubSpot emulator (everything else under /crm/ is Zoho's)."""

from __future__ import annotations

# Mount points: /crm/objects/{2026-03|v3}/..., /crm/v3/objects/..., /crm/associations/2026-03/...,
# /crm/properties/2026-03/...
OBJECTS_MOUNT = "/crm/objects"
V3_OBJECTS_MOUNT = "/crm/v3/objects"
ASSOCIATIONS_MOUNT = "/crm/associations"
PROPERTIES_MOUNT = "/crm/properties"
HUBSPOT_PREFIXES = (f"{OBJECTS_MOUNT}/", f"{V3_OBJECTS_MOUNT}/", f"{ASSOCIATIONS_MOUNT}/", f"{PROPERTIES_MOUNT}/")


def is_hubspot_path(path: str) -> bool:
    return path.startswith(HUBSPOT_PREFIXES)
