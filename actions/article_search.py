"""Article search: the honest fallback, and "tell me more" from the cited passages."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.messages import send
from knowledge import Passage, load_passages
from knowledge.search import default_index


def quote(passage: Passage) -> str:
    """A passage as a labelled quote from the article."""
    return f"“{passage.text}”\n(From the article, passage {passage.id}: {passage.title}.)"


def last_cited(tracker: Tracker) -> Optional[Dict[str, Any]]:
    """The metadata of the bot's latest message that cited the article, if any."""
    for event in reversed(tracker.events):
        if event.get("event") != "bot":
            continue
        metadata = event.get("metadata") or {}
        if (metadata.get("metadata") or {}).get("citations"):
            return metadata
    return None


class ActionSearchArticle(Action):
    """Fallback: quote the best passage when it is relevant, otherwise say so."""

    def name(self) -> Text:
        return "action_search_article"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        text = (tracker.latest_message or {}).get("text") or ""
        hits = default_index().search(text, limit=1)
        if hits and hits[0].relevant:
            passage = hits[0].passage
            dispatcher.utter_message(
                text="I'm not sure I understood, but this part of the article may help:\n"
                + quote(passage)
                + "\nFor advice about your own situation, please ask the clinic.",
                metadata={"citations": [passage.id], "search": "article"},
            )
        else:
            send(dispatcher, "no_answer")
        return []


class ActionExplainMore(Action):
    """"Tell me more": the full passages behind the bot's latest cited answer."""

    def name(self) -> Text:
        return "action_explain_more"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        cited = last_cited(tracker)
        passages = load_passages()
        if cited is None:
            dispatcher.utter_message(
                text="Happy to explain more. Which topic are you interested in?"
            )
            dispatcher.utter_message(response="utter_help")
            return []
        ids = [pid for pid in cited["metadata"]["citations"] if pid in passages]
        dispatcher.utter_message(
            text="Here is what the article says in full:\n\n"
            + "\n\n".join(quote(passages[pid]) for pid in ids),
            metadata={"citations": ids, "detail_of": cited.get("utter_action")},
        )
        return []
