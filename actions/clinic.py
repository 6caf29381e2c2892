"""The clinic's contact details, from configuration, never from code."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from common.settings import endpoints_section

FIELDS = ("name", "phone", "email", "hours", "url", "emergency")


def clinic_settings() -> Dict[str, str]:
    """The `clinic` section of endpoints.yml, each field overridable by CLINIC_<FIELD>."""
    settings = dict(endpoints_section("clinic"))
    for field in FIELDS:
        value = os.environ.get(f"CLINIC_{field.upper()}")
        if value:
            settings[field] = value
    return settings


def contact_text(settings: Dict[str, str]) -> str:
    """The contact details as a short message; lines for unset fields are left out."""
    lines = [f"You can reach {settings.get('name', 'the clinic')}:"]
    for label, field in (("Phone", "phone"), ("E-mail", "email"), ("Hours", "hours"), ("Web", "url")):
        if settings.get(field):
            lines.append(f"{label}: {settings[field]}")
    if len(lines) == 1:
        lines = ["Please contact your clinic or your doctor."]
    if settings.get("emergency"):
        lines.append(f"In an emergency, call {settings['emergency']}.")
    return "\n".join(lines)


class ActionShowClinicContact(Action):
    """Tells the patient how to reach the clinic."""

    def name(self) -> Text:
        return "action_show_clinic_contact"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(text=contact_text(clinic_settings()))
        return []
