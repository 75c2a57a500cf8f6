"""The Zoho side's seed data: users and appointments, with times derived from the clock at reset. Pure.

Users (the first is the API user every access token acts as):
    5545974000000393001  Patricia Boyle  patricia.boyle@zylker.example
    5545974000000393015  Amelia Burrows  amelia.burrows@zylker.example
    5545974000000393027  Daniel Okafor   daniel.okafor@zylker.example

Appointments (D = the day after reset, at 00:00 in UTC):
    5545974000002555001  "AC Repair - James"            Scheduled, never rescheduled, D+1 09:30, 60 min
    5545974000002555012  "Boiler Service - Maria"       Scheduled, rescheduled once (by Patricia Boyle 25
                                                        hours before reset, "By Customer") from D+1 11:00 to
                                                        D+2 14:00, 90 min; no history rows (Zoho's GET
                                                        history answers 204 while Reschedule_Count is 1)
    5545974000002555023  "Duct Cleaning - Chen"         Cancelled two hours before reset, was D+3 10:00
    5545974000002555034  "Heat Pump Install - Olivia"   Completed; it ran the day before reset, 08:00-12:00
                                                        (a future Completed appointment cannot exist in
                                                        Zoho, which refuses completion before the end time)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class User:
    """A CRM user, as lookups show it."""

    id: str
    name: str
    email: str

    def ref(self) -> dict[str, str]:
        """`{"name","id"}` as in write-result details."""
        return {"name": self.name, "id": self.id}

    def full_ref(self) -> dict[str, str]:
        """`{"name","id","email"}` as in records."""
        return {"name": self.name, "id": self.id, "email": self.email}


API_USER = User("5545974000000393001", "Patricia Boyle", "patricia.boyle@zylker.example")
USERS: tuple[User, ...] = (
    API_USER,
    User("5545974000000393015", "Amelia Burrows", "amelia.burrows@zylker.example"),
    User("5545974000000393027", "Daniel Okafor", "daniel.okafor@zylker.example"),
)

SCHEDULED_ID = "5545974000002555001"
RESCHEDULED_ID = "5545974000002555012"
CANCELLED_ID = "5545974000002555023"
COMPLETED_ID = "5545974000002555034"
# When the reschedule happened: before the workers' default sweep window (SWEEP_LOOKBACK_S, 24 h) opens, so
# a worker started around the sandbox's reset does not act on the seed's reschedule (a history row nobody asked for).
RESCHEDULED_AGO = timedelta(hours=25)

_SERVICES = {
    "AC Repair": "5545974000001230001",
    "Boiler Service": "5545974000001230007",
    "Duct Cleaning": "5545974000001230013",
    "Heat Pump Install": "5545974000001230019",
}
_CONTACTS_MODULE = {"api_name": "Contacts", "id": "5545974000000000133"}
_CONTACTS = {
    "James": "5545974000001500001",
    "Maria": "5545974000001500007",
    "Chen": "5545974000001500013",
    "Olivia": "5545974000001500019",
}


def blank_appointment(record_id: str, now: datetime) -> dict[str, Any]:
    """Every Appointments__s field with Zoho's defaults; datetimes are kept as aware datetimes."""
    start = (now + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    return {
        "Owner": API_USER.full_ref(),
        "Appointment_Name": "New Appointment",
        "Appointment_Start_Time": start,
        "Appointment_End_Time": start + timedelta(minutes=60),
        "Duration": 60,
        "Status": "Scheduled",
        "Service_Name": None,
        "Appointment_For": None,
        "Location": "Business Address",
        "Address": None,
        "Additional_Information": None,
        "Remind_At": None,
        "Rescheduled_From": None,
        "Rescheduled_To": None,
        "Rescheduled_Time": None,
        "Rescheduled_By": None,
        "Reschedule_Reason": None,
        "Reschedule_Note": None,
        "Reschedule_Count": 0,
        "Cancelled_Time": None,
        "Cancelled_By": None,
        "Cancellation_Reason": None,
        "Cancellation_Note": None,
        "Job_Sheet_Name__s": None,
        "Job_Sheet_Created__s": False,
        "Job_Sheet_Section__s": "Job Sheet Information",
        "Job_Sheet_Description__s": None,
        "Record_Status__s": "Available",
        "Tag": [],
        "$editable": True,
        "$sharing_permission": "full_access",
        "Created_Time": now,
        "Created_By": API_USER.full_ref(),
        "Modified_Time": now,
        "Modified_By": API_USER.full_ref(),
        "Last_Activity_Time": None,
        "id": record_id,
    }


def _appointment(
    record_id: str, service: str, customer: str, start: datetime, minutes: int, now: datetime
) -> dict[str, Any]:
    record = blank_appointment(record_id, now)
    created = now - timedelta(days=7)
    record.update(
        {
            "Appointment_Name": f"{service} - {customer}",
            "Appointment_Start_Time": start,
            "Appointment_End_Time": start + timedelta(minutes=minutes),
            "Duration": minutes,
            "Service_Name": {"name": service, "id": _SERVICES[service]},
            "Appointment_For": {
                "module": dict(_CONTACTS_MODULE),
                "name": customer,
                "id": _CONTACTS[customer],
            },
            "Created_Time": created,
            "Modified_Time": created,
        }
    )
    return record


def seed_appointments(now: datetime) -> list[dict[str, Any]]:
    """The four seed appointments, their times relative to `now` (see the module docstring)."""
    now = now.replace(microsecond=0)
    day = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0)
    scheduled = _appointment(SCHEDULED_ID, "AC Repair", "James", day + timedelta(days=1, hours=9.5), 60, now)

    rescheduled = _appointment(RESCHEDULED_ID, "Boiler Service", "Maria", day + timedelta(days=2, hours=14), 90, now)
    rescheduled.update(
        {
            "Rescheduled_From": day + timedelta(days=1, hours=11),
            "Rescheduled_To": rescheduled["Appointment_Start_Time"],
            "Rescheduled_Time": now - RESCHEDULED_AGO,
            "Rescheduled_By": API_USER.full_ref(),
            "Reschedule_Reason": "By Customer",
            "Reschedule_Note": "Customer travelling that day",
            "Reschedule_Count": 1,
            "Modified_Time": now - RESCHEDULED_AGO,
            "Last_Activity_Time": now - RESCHEDULED_AGO,
        }
    )

    cancelled = _appointment(CANCELLED_ID, "Duct Cleaning", "Chen", day + timedelta(days=3, hours=10), 120, now)
    cancelled.update(
        {
            "Status": "Cancelled",
            "Cancelled_Time": now - timedelta(hours=2),
            "Cancelled_By": API_USER.full_ref(),
            "Cancellation_Reason": "By Customer",
            "Cancellation_Note": "Moved house",
            "Modified_Time": now - timedelta(hours=2),
        }
    )

    ran = day - timedelta(days=2) + timedelta(hours=8)
    completed = _appointment(COMPLETED_ID, "Heat Pump Install", "Olivia", ran, 240, now)
    completed.update(
        {
            "Status": "Completed",
            "Job_Sheet_Name__s": "Heat pump commissioning",
            "Job_Sheet_Created__s": True,
            "Job_Sheet_Description__s": "Installed and tested",
            "Modified_Time": ran + timedelta(hours=5),
        }
    )
    return [scheduled, rescheduled, cancelled, completed]
