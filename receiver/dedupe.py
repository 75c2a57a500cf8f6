"""Dedupe: which delivery keys a HubSpot batch's events have, grouped by the record they become a job for. Pure.

A redelivered event makes no new work: each job carries the seen keys (workers/keys.py `seen`) of the events
it was made of, and the enqueue script (workers/queue.py) skips a job whose events were all seen, and marks
them seen in the same call that queues (or folds, or finds the duplicate of) the job. When only some of a
job's events were seen, the script does nothing with it and says which: the job is made again from the
others (`unseen_part`), as if the seen ones had not been sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from receiver.payloads.hubspot import HubSpotEvent
from receiver.validate import hubspot_events, hubspot_module
from workers import keys
from workers.contract import ChangeEvent


@dataclass(frozen=True)
class Delivery:
    """One record's events in a batch, each delivery once: the job they become, and their seen keys."""

    events: tuple[HubSpotEvent, ...]
    seen: tuple[str, ...]

    def change(self) -> ChangeEvent:
        """The record's one ChangeEvent (receiver/validate.py `hubspot_events`)."""
        (change,) = hubspot_events(list(self.events))
        return change


@dataclass(frozen=True)
class Deliveries:
    """A batch's served events by record, and how many events were served, or repeated within the batch."""

    records: list[Delivery]
    served: int  # events about a record crmflow serves, repeats included
    repeated: int  # served events whose delivery key came earlier in the same batch


def hubspot_deliveries(events: Sequence[HubSpotEvent], source: str = "hubspot") -> Deliveries:
    """Group the served events of a batch by record (portal, module, object), each delivery key once."""
    by_record: dict[tuple[int, str, int], dict[str, HubSpotEvent]] = {}
    served = 0
    for event in events:
        module = hubspot_module(event)
        if module is None or event.objectId is None:
            continue
        served += 1
        by_record.setdefault((event.portalId, module, event.objectId), {})[event.delivery_key()] = event
    records = [
        Delivery(tuple(group.values()), tuple(keys.seen(source, key) for key in group)) for group in by_record.values()
    ]
    return Deliveries(records, served, served - sum(len(record.events) for record in records))


def unseen_part(delivery: Delivery, seen: Sequence[int]) -> Delivery:
    """The events of `delivery` not seen (`seen`: the script's answer, 1 per seen key, in order)."""
    kept = [(event, key) for event, key, flag in zip(delivery.events, delivery.seen, seen, strict=True) if not flag]
    return Delivery(tuple(event for event, _ in kept), tuple(key for _, key in kept))
