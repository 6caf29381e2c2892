"""Yes and no outside a form: the answer to the bot's latest offer, if it made one.

An answer offers something by naming it in its response metadata, e.g. the
when-surgery answer has `metadata: {offer: action_reset_checklist}`, the first
step of the surgery checklist (data/rules/checklist.yml).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction
from rasa_sdk.executor import CollectingDispatcher


def pending_offer(tracker: Tracker) -> Optional[str]:
    """What the bot offered in its message just before the patient's latest one."""
    seen_user = False
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            if seen_user:
                return None
            seen_user = True
        elif kind == "bot" and seen_user:
            return ((event.get("metadata") or {}).get("metadata") or {}).get("offer")
    return None


class ActionHandleOfferReply(Action):
    """A yes: accept the offer the bot just made, if it made one; otherwise carry on.

    (A no needs no action: a rule answers it with `utter_offer_declined`.)
    """

    def name(self) -> Text:
        return "action_handle_offer_reply"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        offer = pending_offer(tracker)
        if offer:
            return [FollowupAction(offer)]
        dispatcher.utter_message(response="utter_anything_else")
        return []
