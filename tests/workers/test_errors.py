"""workers/errors.py: how a log line names an error, never with the words a CRM or the data put in it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError

from workers.crm.hubspot_models import raise_for_hubspot
from workers.crm.zoho_models import raise_for_zoho
from workers.errors import ActionNotApplicableError, CrmError, CrmRejectedError, CrmTransientError, loggable

ECHO = "the value 'jane.doe@example.com' of Email is invalid"


class Contact(BaseModel):
    email: int


def test_crmflows_own_words_are_logged() -> None:
    assert loggable(CrmTransientError("GET /Appointments__s/1: timed out", code="TIMEOUT")) == (
        "TIMEOUT: GET /Appointments__s/1: timed out"
    )
    assert loggable(ActionNotApplicableError("Appointment_Start_Time did not change")) == (
        "NOT_APPLICABLE: Appointment_Start_Time did not change"
    )
    assert loggable(RedisConnectionError("Connection refused")) == "ConnectionError: Connection refused"


def test_a_crms_words_and_unknown_exceptions_are_not() -> None:
    with pytest.raises(ValidationError) as invalid:
        Contact.model_validate({"email": "jane.doe@example.com"})

    shown = [loggable(CrmRejectedError(ECHO, code="INVALID_DATA", quoted=True)), loggable(invalid.value)]

    assert shown == [
        "INVALID_DATA (CrmRejectedError; the CRM's message is not logged)",
        "ValidationError (message not logged)",
    ]


@pytest.mark.parametrize(
    ("raise_for", "response"),
    [
        (
            raise_for_zoho,
            httpx.Response(400, json={"data": [{"code": "INVALID_DATA", "message": ECHO, "status": "error"}]}),
        ),
        (raise_for_zoho, httpx.Response(400, json={"code": "INVALID_DATA", "message": ECHO, "status": "error"})),
        (raise_for_hubspot, httpx.Response(400, json={"category": "VALIDATION_ERROR", "message": ECHO})),
        (raise_for_hubspot, httpx.Response(404, json={"category": "OBJECT_NOT_FOUND", "message": ECHO})),
    ],
)
def test_errors_made_of_a_crms_answer_are_quoted(
    raise_for: Callable[[httpx.Response], Any], response: httpx.Response
) -> None:
    with pytest.raises(CrmError) as raised:
        raise_for(response)

    assert raised.value.quoted and ECHO in raised.value.message
    assert "jane.doe" not in loggable(raised.value)
