"""The article's surgery criteria as a checklist: the form, its result and a summary.

Criteria (article passage p18): 1) 3 months of proper conservative treatment
without effect; 2) an acute attack of severe back and leg pain that conservative
treatment can't relieve and that seriously affects daily life and sleep; 3) signs
of nerve-root or cauda equina palsy. The third is asked first, as a red-flag
screen: a yes ends the questions and escalates at once.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.messages import send

FORM = "surgery_criteria_form"
SCREEN = "red_flag_screen"
QUESTIONS = {
    SCREEN: "Bladder or bowel control lost, numbness between the legs, foot drop, "
    "or new weakness or numbness in both legs?",
    "conservative_failed": "3 months or more of proper conservative treatment "
    "(absolute bed rest, traction) without effect?",
    "severe_pain": "A sudden attack of severe back and leg pain that conservative "
    "treatment doesn't relieve and that seriously affects daily life and sleep?",
}
# The article's criteria, in its order, with the slot that answers each.
CRITERIA = [
    ("conservative_failed", "conservative treatment hasn't worked for 3 months"),
    ("severe_pain", "severe back and leg pain that treatment doesn't relieve and that "
     "seriously affects daily life and sleep"),
    (SCREEN, "possible signs of nerve damage"),
]
SCREEN_SIGN = "checklist_nerve_signs"
SCREEN_LABEL = "one of the nerve warning signs in the checklist"
ANSWERS = {"yes", "no"}


class ValidateSurgeryCriteriaForm(FormValidationAction):
    """Asks the screen first; "not sure" explains and asks again; a yes to the screen ends it."""

    def name(self) -> Text:
        return f"validate_{FORM}"

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        if tracker.get_slot(SCREEN) == "yes":
            return [SCREEN]
        return domain_slots

    @staticmethod
    def _validate(slot: str, value: Any, dispatcher: CollectingDispatcher) -> Dict[Text, Any]:
        if value is None:  # cleared, e.g. by action_reset_checklist: nothing to check
            return {}
        if value in ANSWERS:
            return {slot: value}
        send(dispatcher, f"explain_{slot}")
        return {slot: None}

    def validate_red_flag_screen(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self._validate(SCREEN, value, dispatcher)

    def validate_conservative_failed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self._validate("conservative_failed", value, dispatcher)

    def validate_severe_pain(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self._validate("severe_pain", value, dispatcher)


def evaluate(answers: Dict[str, Optional[str]], today: date) -> Dict[str, Any]:
    """The checklist's outcome from the answers: which criteria are met, and what follows."""
    met = [label for slot, label in CRITERIA if answers.get(slot) == "yes"]
    if answers.get(SCREEN) == "yes":
        outcome = "urgent_care"
    elif met:
        outcome = "discuss_surgery"
    else:
        outcome = "conservative_care"
    return {
        "answers": {slot: answers.get(slot) or "not asked" for slot in QUESTIONS},
        "criteria_met": met,
        "outcome": outcome,
        "date": today.isoformat(),
        "citations": ["p18"],
    }


def result_text(result: Dict[str, Any]) -> str:
    """The result in plain words: never a diagnosis."""
    met = result["criteria_met"]
    if result["outcome"] == "discuss_surgery":
        which = "; ".join(met)
        return (
            f"Based on your answers, {len(met)} of the article's three criteria for surgery "
            f"may apply: {which}. The article says that in these situations you should seek "
            "medical care, and surgery may be needed soon. Please see a spine specialist to "
            "discuss it. This is not a diagnosis: only a doctor who examines you can decide."
        )
    return (
        "Based on your answers, none of the article's three criteria for surgery apply right "
        "now. For less severe symptoms the article describes conservative treatment (absolute "
        "bed rest and traction), which mostly helps for about six weeks, so keep your doctor "
        "informed. Get emergency care at once if you lose control of your bladder or bowels, "
        "a foot starts to drop, or you get numbness between your legs or weakness in both "
        "legs. This is not a diagnosis."
    )


class _AskQuestion:
    """Asks one checklist question (the form runs `action_ask_<slot>` when it exists).

    A mixin, not an Action, so rasa-sdk registers only the three concrete actions.
    """

    slot = ""

    def name(self) -> Text:
        return f"action_ask_{self.slot}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        send(dispatcher, f"ask_{self.slot}")
        return []


class ActionAskRedFlagScreen(_AskQuestion, Action):
    slot = SCREEN


class ActionAskConservativeFailed(_AskQuestion, Action):
    slot = "conservative_failed"


class ActionAskSeverePain(_AskQuestion, Action):
    slot = "severe_pain"


class ActionEvaluateSurgeryCriteria(Action):
    """Runs when the form is done: states the outcome, stores it, clears the answers."""

    def name(self) -> Text:
        return "action_evaluate_surgery_criteria"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        answers = {slot: tracker.get_slot(slot) for slot in QUESTIONS}
        result = evaluate(answers, date.today())
        events: List[EventType] = [SlotSet("checklist_result", result)]
        events += [SlotSet(slot, None) for slot in QUESTIONS]
        if result["outcome"] == "urgent_care":
            # The same urgent message and escalation as any other red flag.
            return events + [
                SlotSet("red_flag_signs", [SCREEN_SIGN]),
                SlotSet("red_flag_labels", [SCREEN_LABEL]),
                FollowupAction("utter_red_flag_emergency"),
            ]
        dispatcher.utter_message(
            text=result_text(result),
            buttons=[
                {"title": "Summary for my doctor", "payload": "/request_summary"},
                {"title": "Contact the clinic", "payload": "/contact_clinic"},
            ],
            json_message={"checklist": result},
            metadata={"citations": ["p18", "p14", "p16"] if not result["criteria_met"] else ["p18"]},
        )
        return events


def summary_text(result: Dict[str, Any]) -> str:
    """A short record of the patient's answers to show a doctor."""
    lines = [f"Surgery-criteria checklist, {result['date']} (patient education, not a diagnosis)"]
    for slot, question in QUESTIONS.items():
        lines.append(f"- {question} {result['answers'].get(slot, 'not asked')}")
    met = result["criteria_met"]
    lines.append("Criteria that may apply: " + ("; ".join(met) if met else "none"))
    lines.append("Source: the criteria for surgery in the clinic's article on calcified disc herniation.")
    return "\n".join(lines)


class ActionSummarizeChecklist(Action):
    """The latest checklist as a short summary the patient can show their doctor."""

    def name(self) -> Text:
        return "action_summarize_checklist"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        result = tracker.get_slot("checklist_result")
        if not result:
            send(dispatcher, "no_checklist_yet")
            return []
        dispatcher.utter_message(text=summary_text(result), json_message={"checklist": result})
        return []


class ActionResetChecklist(Action):
    """Clears earlier answers so the checklist starts from the first question."""

    def name(self) -> Text:
        return "action_reset_checklist"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        return [SlotSet(slot, None) for slot in QUESTIONS]
