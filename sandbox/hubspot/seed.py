"""The HubSpot portal's seed data: users (who are also the owners) and appointments, times relative to reset. Pure.

Users (HubSpot user ids; the sandbox uses the same number as owner id, though real portals number owners
and users separately):
    71230001  Ana Lima      ana.lima@northwind.example
    71230002  Ben Carter    ben.carter@northwind.example
    71230003  Chloe Dubois  chloe.dubois@northwind.example

Appointments (D = the day after reset at 00:00 UTC; every one created 7 days before reset in the UI):
    51204030001  "AC Repair - James"           SCHEDULED, never rescheduled, D+1 09:30-10:30, owner Ana
    51204030002  "Boiler Service - Maria"      SCHEDULED, rescheduled once: created by Ben (CRM_UI) for
                                               D+1 11:00-12:30, moved 25 hours before reset by the booking app
                                               1160452 (INTEGRATION) to D+2 14:00-15:30. Its
                                               hs_appointment_start and hs_appointment_end histories have two
                                               entries each, nearly 6 days apart, the older by Ben.
    51204030003  "Duct Cleaning - Chen"        CANCELED by Ana (CRM_UI) two hours before reset, was D+3
                                               10:00-12:00
    51204030004  "Heat Pump Install - Olivia"  COMPLETED: ran the day before reset 08:00-12:00, marked
                                               completed by Ben an hour after it ended
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sandbox.hubspot.catalogue import APPOINTMENTS
from sandbox.hubspot.records import HubRecord, Source
from sandbox.hubspot.time import format_iso, truncate_ms
from sandbox.hubspot.writes import apply_write


@dataclass(frozen=True)
class HubSpotUser:
    """A portal user; `owner_id` is what hubspot_owner_id holds."""

    id: int
    first_name: str
    last_name: str
    email: str

    @property
    def owner_id(self) -> str:
        return str(self.id)


ANA = HubSpotUser(71230001, "Ana", "Lima", "ana.lima@northwind.example")
BEN = HubSpotUser(71230002, "Ben", "Carter", "ben.carter@northwind.example")
CHLOE = HubSpotUser(71230003, "Chloe", "Dubois", "chloe.dubois@northwind.example")
USERS: tuple[HubSpotUser, ...] = (ANA, BEN, CHLOE)
BOOKING_APP_ID = 1160452

SCHEDULED_ID = "51204030001"
RESCHEDULED_ID = "51204030002"
CANCELED_ID = "51204030003"
COMPLETED_ID = "51204030004"
FIRST_GENERATED_ID = 51204100001
# When the reschedule happened: before the workers' default sweep window (SWEEP_LOOKBACK_S, 24 h) opens, so
# a worker started around the sandbox's reset does not act on the seed's reschedule (a note nobody asked for).
RESCHEDULED_AGO = timedelta(hours=25)


def _created(
    record_id: str, name: str, start: datetime, minutes: int, by: HubSpotUser, location: str, at: datetime
) -> HubRecord:
    source = Source.ui(by.id)
    record = HubRecord.new(APPOINTMENTS, record_id, source, at)
    properties = {
        "hs_appointment_name": name,
        "hs_appointment_start": format_iso(start),
        "hs_appointment_end": format_iso(start + timedelta(minutes=minutes)),
        "hs_appointment_status": "SCHEDULED",
        "hs_appointment_location": location,
        "hubspot_owner_id": by.owner_id,
    }
    apply_write(record, properties, source, at)
    return record


def seed_appointments(now: datetime) -> list[HubRecord]:
    """The four seed appointments (see the module docstring)."""
    now = truncate_ms(now)
    day = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    created = now - timedelta(days=7)

    scheduled = _created(
        SCHEDULED_ID, "AC Repair - James", day + timedelta(days=1, hours=9.5), 60, ANA, "12 Elm Street", created
    )

    rescheduled = _created(
        RESCHEDULED_ID, "Boiler Service - Maria", day + timedelta(days=1, hours=11), 90, BEN, "4 Mill Lane", created
    )
    new_start = format_iso(day + timedelta(days=2, hours=14))
    apply_write(
        rescheduled, {"hs_appointment_start": new_start}, Source.integration(BOOKING_APP_ID), now - RESCHEDULED_AGO
    )

    canceled = _created(
        CANCELED_ID, "Duct Cleaning - Chen", day + timedelta(days=3, hours=10), 120, ANA, "9 Harbour Road", created
    )
    apply_write(canceled, {"hs_appointment_status": "CANCELED"}, Source.ui(ANA.id), now - timedelta(hours=2))

    ran = day - timedelta(days=2) + timedelta(hours=8)
    completed = _created(COMPLETED_ID, "Heat Pump Install - Olivia", ran, 240, BEN, "77 Orchard Way", created)
    apply_write(completed, {"hs_appointment_status": "COMPLETED"}, Source.ui(BEN.id), ran + timedelta(hours=5))
    return [scheduled, rescheduled, canceled, completed]
