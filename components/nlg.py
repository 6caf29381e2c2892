"""Rasa's response templates, with list slots and structured payloads done right.

Rasa's own templating formats every slot with ``str()``: a list slot becomes
``['bladder_control']`` in the text and a string in a ``custom`` payload. This
generator, configured in endpoints.yml (``nlg: type: components.nlg.SlotValueNLG``)
and running inside the Rasa server, changes two things:

* in the text, a list slot reads as plain English: "a, b and c";
* in ``custom`` payloads, a string that is exactly ``"{slot}"`` is replaced by the
  slot's value itself, so ``signs: "{red_flag_signs}"`` becomes a JSON list.

Everything else is Rasa's ``TemplatedNaturalLanguageGenerator``, so domain
responses keep working when the action server is down.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Dict, Optional, Text

from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.core.nlg.interpolator import interpolate
from rasa.shared.core.domain import Domain
from rasa.utils.endpoints import EndpointConfig

_WHOLE_SLOT = re.compile(r"^\{([A-Za-z_][\w.-]*)\}$")


def join_words(values: list) -> str:
    """["a"] -> "a"; ["a", "b"] -> "a and b"; ["a", "b", "c"] -> "a, b and c"."""
    words = [str(value) for value in values]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def fill_structured(payload: Any, slots: Dict[Text, Any], display: Dict[Text, Any]) -> Any:
    """Fill a custom payload: exact "{slot}" strings take the slot's value as is."""
    if isinstance(payload, dict):
        return {key: fill_structured(value, slots, display) for key, value in payload.items()}
    if isinstance(payload, list):
        return [fill_structured(value, slots, display) for value in payload]
    if isinstance(payload, str):
        whole = _WHOLE_SLOT.match(payload)
        if whole and whole.group(1) in slots:
            return copy.deepcopy(slots[whole.group(1)])
        return interpolate(payload, display)
    return payload


class SlotValueNLG(TemplatedNaturalLanguageGenerator):
    """Templated responses with readable list slots and structured custom payloads."""

    def __init__(
        self,
        endpoint_config: Optional[EndpointConfig] = None,
        domain: Optional[Domain] = None,
    ) -> None:
        super().__init__((domain or Domain.empty()).responses)

    def _fill_response(
        self,
        response: Dict[Text, Any],
        filled_slots: Optional[Dict[Text, Any]] = None,
        **kwargs: Any,
    ) -> Dict[Text, Any]:
        slots = dict(filled_slots or {})
        display = {
            key: join_words(value) if isinstance(value, list) else value
            for key, value in slots.items()
        }
        custom = copy.deepcopy(response.get("custom"))  # Rasa fills it in place
        filled = super()._fill_response(response, display, **kwargs)
        if custom is not None:
            filled["custom"] = fill_structured(custom, {**slots, **kwargs}, {**display, **kwargs})
        return filled
