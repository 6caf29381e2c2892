"""Red-flag escalation: record it in the conversation and notify the clinic.

The patient has already had the urgent message (a domain response, uttered by a
rule before this action runs). This action records the escalation in the
``escalations`` slot and queues one clinic notification per sign in the durable
outbox (common/outbox.py), which a background worker delivers. The Rasa server's
event broker queues the same notifications, so they go out even when this action
server is down; the outbox keeps one per conversation and sign.
"""
from __future__ import annotations

import time
from functools import lru_cache
from typing import List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from common.outbox import DeliveryWorker, Outbox, OutboxSettings, escalation_notifications

UNSPECIFIED = "unspecified"


@lru_cache(maxsize=1)
def outbox() -> Outbox:
    """The process's outbox, with its delivery worker started once."""
    box = Outbox(OutboxSettings.from_config())
    box.worker = DeliveryWorker(box)  # type: ignore[attr-defined]
    box.worker.start()  # type: ignore[attr-defined]
    return box


class ActionEscalateRedFlag(Action):
    """Records the escalation and queues the clinic notification, once per sign."""

    def name(self) -> Text:
        return "action_escalate_red_flag"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        signs = list(tracker.get_slot("red_flag_signs") or []) or [UNSPECIFIED]
        labels = list(tracker.get_slot("red_flag_labels") or [])
        now = time.time()
        box = outbox()
        new = box.enqueue(
            tracker.sender_id, escalation_notifications(tracker.sender_id, signs, labels, now)
        )
        box.worker.wake.set()  # type: ignore[attr-defined]
        record = {
            "level": "emergency",
            "signs": signs,
            "notified": new,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        }
        history = list(tracker.get_slot("escalations") or []) + [record]
        if new:
            dispatcher.utter_message(
                text="I have also let the clinic know. Please don't wait for them to contact "
                "you: get emergency care now.",
            )
        else:
            dispatcher.utter_message(
                text="The clinic already knows about this. Please get emergency care now."
            )
        return [SlotSet("escalations", history)]
