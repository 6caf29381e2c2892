"""Action-server replies checked against a compiled schema (a profiling fix).

Rasa's ``RemoteAction`` checks every action-server reply against its JSON
schema with ``jsonschema.validate()``. That call first validates the schema
itself against the JSON Schema metaschema, then builds a new validator, on
every action call: about 20 ms of CPU each time. Under ``make bench`` with
``BENCH_PROFILE=1`` it was 28% of the Rasa server's CPU.

``install()`` replaces that one method with the same check against the same
schema (``RemoteAction.action_response_format_spec()``), with a validator
built once: under 1 ms. An invalid reply still raises jsonschema's
``ValidationError`` with Rasa's own message, so Rasa handles it as before.

It is installed when the ``components`` package is imported, which every Rasa
process of this project does: the model's pipeline and ``endpoints.yml`` (the
event broker and the NLG) load classes from it.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, Text

from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL

_INSTALLED_MARK = "_compiled_schema_validation"


@functools.lru_cache(maxsize=1)
def compiled_validator() -> Any:
    """A validator for Rasa's action-server reply schema, checked and built once."""
    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
    """What ``RemoteAction._validate_action_result`` does, with a compiled validator."""
    error = best_match(compiled_validator().iter_errors(result))
    if error is not None:
        error.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error
    return True


setattr(validate_action_result, _INSTALLED_MARK, True)


def install() -> None:
    """Use the compiled validator in Rasa's ``RemoteAction`` (idempotent)."""
    if not getattr(RemoteAction._validate_action_result, _INSTALLED_MARK, False):
        RemoteAction._validate_action_result = validate_action_result  # type: ignore[assignment]


def installed() -> bool:
    return bool(getattr(RemoteAction._validate_action_result, _INSTALLED_MARK, False))
