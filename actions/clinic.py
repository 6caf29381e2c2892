"""The clinic's contact details, from configuration, never from code."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Text

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

PROJECT_DIR = Path(__file__).resolve().parent.parent
ENDPOINTS_PATH = Path(os.environ.get("ENDPOINTS_FILE", PROJECT_DIR / "endpoints.yml"))
FIELDS = ("name", "phone", "email", "hours", "url", "emergency")


@lru_cache(maxsize=None)
def endpoints_section(name: str) -> Dict[str, str]:
    """A section of endpoints.yml (the project's own settings live beside Rasa's)."""
    try:
        with open(ENDPOINTS_PATH, encoding="utf-8") as handle:
            section = (yaml.safe_load(handle) or {}).get(name) or {}
    except FileNotFoundError:
        section = {}
    return {key: str(value) for key, value in section.items() if value is not None}


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
