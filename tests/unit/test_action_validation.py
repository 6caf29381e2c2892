"""Action-server replies are validated as stock Rasa does, with a compiled schema."""
import copy

import jsonschema
import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

import components  # noqa: F401  (installs the compiled validation)
from components import action_validation

VALID = [
    {"events": [], "responses": []},
    {
        "events": [
            {"event": "slot", "timestamp": None, "name": "red_flag_screen", "value": "no"},
            {"event": "active_loop", "name": None},
            {"event": "followup", "name": "action_listen"},
        ],
        "responses": [{"text": "hello", "buttons": [{"title": "Yes", "payload": "/affirm"}]}],
    },
    {"events": [{"event": "bot", "text": "hi", "data": {}, "metadata": {}}], "responses": [{"custom": {"a": 1}}]},
]
INVALID = [
    {"events": "not a list", "responses": []},
    {"events": [{"no_event_key": 1}], "responses": []},
    {"events": [{"event": "slot", "name": 5, "value": "x"}], "responses": []},
    {"events": [], "responses": "nope"},
]


def _stock(result):
    """Stock Rasa's check: jsonschema.validate() against the same schema."""
    jsonschema.validate(result, RemoteAction.action_response_format_spec())


def test_installed_when_the_package_is_imported():
    assert action_validation.installed()
    action_validation.install()  # idempotent
    assert RemoteAction._validate_action_result is action_validation.validate_action_result


@pytest.mark.parametrize("payload", VALID)
def test_accepts_what_stock_rasa_accepts(payload):
    _stock(payload)
    assert RemoteAction("action_x", None)._validate_action_result(copy.deepcopy(payload)) is True


@pytest.mark.parametrize("payload", INVALID)
def test_rejects_what_stock_rasa_rejects_with_rasas_message(payload):
    with pytest.raises(ValidationError) as stock:
        _stock(payload)
    with pytest.raises(ValidationError) as ours:
        RemoteAction("action_x", None)._validate_action_result(copy.deepcopy(payload))
    assert ours.value.message.startswith(stock.value.message)
    assert "Failed to validate Action server response" in ours.value.message


def test_schema_is_compiled_once():
    action_validation.compiled_validator.cache_clear()
    action = RemoteAction("action_x", None)
    for _ in range(5):
        action._validate_action_result(VALID[1])
    info = action_validation.compiled_validator.cache_info()
    assert info.misses == 1 and info.hits == 4
