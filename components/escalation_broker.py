"""A safety net inside the Rasa server: every urgent message notifies the clinic.

Rasa streams each saved event to the configured event broker (endpoints.yml,
``event_broker: type: components.escalation_broker.EscalationSafetyNet``). When a
bot message carries an ``escalation`` payload, this broker queues one clinic
notification per sign in the durable outbox (common/outbox.py) and runs its own
delivery worker. So the clinic hears of a red flag even when the action server is
down; when it is up, its ``action_escalate_red_flag`` queues the same
notifications, and the outbox's unique key keeps one per conversation and sign.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, Optional, Text

from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig

from common.outbox import DeliveryWorker, Outbox, OutboxSettings, escalation_notifications

logger = logging.getLogger(__name__)


class EscalationSafetyNet(EventBroker):
    """Queues clinic notifications for urgent messages; delivers them in the background."""

    def __init__(self, outbox: Outbox, start_worker: bool = True) -> None:
        self.outbox = outbox
        self.worker: Optional[DeliveryWorker] = None
        if start_worker:
            self.worker = DeliveryWorker(outbox)
            self.worker.start()

    @classmethod
    async def from_endpoint_config(
        cls,
        broker_config: EndpointConfig,
        event_loop: Optional[asyncio.AbstractEventLoop] = None,
    ) -> "EscalationSafetyNet":
        return cls(Outbox(OutboxSettings.from_config()))

    def publish(self, event: Dict[Text, Any]) -> None:
        if event.get("event") != "bot":
            return
        escalation = ((event.get("data") or {}).get("custom") or {}).get("escalation")
        if not isinstance(escalation, dict):
            return
        conversation_id = str(event.get("sender_id") or "")
        signs = [str(s) for s in escalation.get("signs") or []] or ["unspecified"]
        labels = [str(l) for l in escalation.get("labels") or []]
        try:
            new = self.outbox.enqueue(
                conversation_id,
                escalation_notifications(conversation_id, signs, labels, event.get("timestamp") or time.time()),
            )
        except Exception:  # never break the conversation; the action queues it too
            logger.exception("Could not queue the clinic notification for an escalation")
            return
        if new and self.worker:
            self.worker.wake.set()

    async def close(self) -> None:
        if self.worker:
            self.worker.stop()
