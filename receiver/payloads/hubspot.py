"""HubSpot webhook body: a JSON array of up to 100 subscription events. Pure.

Format: https://developers.hubspot.com/docs/api/webhooks (see docs/hubspot.md, "Webhook batches"). Both the
generic format (`object.propertyChange` with `objectTypeId`) and the legacy one (`contact.propertyChange`)
validate; keys HubSpot may add later are ignored, not rejected.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, RootModel, StrictInt

MAX_EVENTS = 100  # "Each request can contain up to 100 events."

# HubSpot's ids and times are 64-bit (Java longs); larger numbers are refused with the field named.
MAX_LONG = 2**63 - 1
Id = Annotated[StrictInt, Field(ge=0, le=MAX_LONG)]


class HubSpotEvent(BaseModel):
    """One event: something happened to one object (creation, deletion, a property change, ...)."""

    model_config = ConfigDict(extra="ignore")

    eventId: Id  # "not guaranteed to be unique"
    subscriptionId: Id
    portalId: Id
    appId: Id | None = None
    occurredAt: Id  # epoch milliseconds
    subscriptionType: Annotated[str, Field(min_length=1, max_length=100)]
    attemptNumber: Id = 0
    # Absent from association-change events (fromObjectId/toObjectId instead) and some merges.
    objectId: Id | None = None
    objectTypeId: str | None = None
    propertyName: str | None = None
    propertyValue: Any = None
    changeSource: str | None = None

    @property
    def action(self) -> str:
        """What happened: the part after the dot ("propertyChange", "creation", "deletion", ...)."""
        return self.subscriptionType.rsplit(".", 1)[-1]

    def delivery_key(self) -> str:
        """Identifies the event across HubSpot's redeliveries (eventId alone is not unique)."""
        parts = (
            self.portalId,
            self.subscriptionId,
            self.subscriptionType,
            self.objectId,
            self.propertyName,
            self.occurredAt,
        )
        return ":".join(str(part) for part in parts)


class HubSpotBatch(RootModel[Annotated[list[HubSpotEvent], Field(max_length=MAX_EVENTS)]]):
    """The body of one webhook request."""
