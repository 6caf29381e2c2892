"""Pure computations of `make eval`: from parse results and Rasa's reports to figures.

A *record* is one evaluated message and what the model made of it::

    {"text": ..., "source": "heldout" | "eval.yml" | ...,
     "gold_intent": "faq" | "greet" | ... | None (red-flag sets),
     "gold_key": "faq/bed" | None,          # the FAQ topic, for faq questions
     "gold_red_flag": bool,                 # a red-flag report?
     "intent": final intent, after every fallback and the red-flag detector,
     "confidence": float, "response_key": "faq/bed" | None,
     "response_confidence": float | None}
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

RED_FLAG_INTENT = "report_red_flag"  # components.red_flags.INTENT_NAME (checked in the tests)
FALLBACK_INTENT = "nlu_fallback"
RETRIEVAL_INTENT = "faq"
OUT_OF_SCOPE_INTENT = "out_of_scope"
AVERAGE_ROWS = ("weighted avg", "macro avg", "micro avg", "accuracy")


def ratio(part: float, whole: float) -> Optional[float]:
    """part / whole, or None when there is nothing to divide by."""
    return part / whole if whole else None


def selected_response(
    parse: Mapping[str, Any], retrieval_intent: str = RETRIEVAL_INTENT
) -> Tuple[Optional[str], Optional[float]]:
    """The response selector's answer key ("faq/bed") and confidence, if any.

    A ResponseSelector configured with ``retrieval_intent: faq`` reports under
    ``faq``; one without (Rasa's default pipeline) under ``default``.
    """
    selector = parse.get("response_selector") or {}
    selection = selector.get(retrieval_intent) or selector.get("default") or {}
    response = selection.get("response") or {}
    return response.get("intent_response_key"), response.get("confidence")


def make_record(
    text: str,
    parse: Mapping[str, Any],
    source: str,
    gold_intent: Optional[str] = None,
    gold_key: Optional[str] = None,
    gold_red_flag: Optional[bool] = None,
) -> Dict[str, Any]:
    """One record from a parse result (``agent.parse_message``) and the gold labels."""
    intent = parse.get("intent") or {}
    key, key_confidence = selected_response(parse)
    return {
        "text": text,
        "source": source,
        "gold_intent": gold_intent,
        "gold_key": gold_key,
        "gold_red_flag": (gold_intent == RED_FLAG_INTENT) if gold_red_flag is None else gold_red_flag,
        "intent": intent.get("name"),
        "confidence": intent.get("confidence"),
        "response_key": key,
        "response_confidence": key_confidence,
    }


def answered_right(record: Mapping[str, Any]) -> bool:
    """A FAQ question gets the right answer: the final intent is the retrieval intent
    (no fallback, no other intent) and the selected answer is the gold topic."""
    return (
        record.get("gold_key") is not None
        and record.get("intent") == RETRIEVAL_INTENT
        and record.get("response_key") == record["gold_key"]
    )


def is_fallback(record: Mapping[str, Any]) -> bool:
    return record.get("intent") == FALLBACK_INTENT


def heldout_summary(records: Iterable[Mapping[str, Any]]) -> Dict[str, Any]:
    """FAQ answers, other intents and fallbacks on the held-out messages.

    Only records with a gold intent count (the red-flag sets have none).
    """
    records = [r for r in records if r.get("gold_intent")]
    faq = [r for r in records if r.get("gold_key") is not None]
    other = [r for r in records if r.get("gold_key") is None]
    out_of_scope = [r for r in other if r["gold_intent"] == OUT_OF_SCOPE_INTENT]
    in_scope_other = [r for r in other if r["gold_intent"] != OUT_OF_SCOPE_INTENT]

    def fallbacks(group: List[Mapping[str, Any]]) -> Dict[str, Any]:
        count = sum(is_fallback(r) for r in group)
        return {"n": len(group), "fallbacks": count, "share": ratio(count, len(group))}

    answered = sum(answered_right(r) for r in faq)
    selector_right = sum(r.get("response_key") == r["gold_key"] for r in faq)
    faq_outcomes = Counter(
        "answered right" if answered_right(r)
        else "fallback" if is_fallback(r)
        else "wrong answer" if r.get("intent") == RETRIEVAL_INTENT
        else f"intent {r.get('intent')}"
        for r in faq
    )
    other_right = sum(r.get("intent") == r["gold_intent"] for r in other)
    return {
        "messages": len(records),
        "faq_questions": len(faq),
        "answered_right": answered,
        "answered_right_share": ratio(answered, len(faq)),
        "selector_right": selector_right,
        "selector_right_share": ratio(selector_right, len(faq)),
        "faq_outcomes": dict(faq_outcomes.most_common()),
        "other_messages": len(other),
        "other_intent_right": other_right,
        "other_intent_right_share": ratio(other_right, len(other)),
        "fallback": fallbacks(records),
        "fallback_by_group": {
            "faq": fallbacks(faq),
            "other in scope": fallbacks(in_scope_other),
            "out_of_scope": fallbacks(out_of_scope),
        },
    }


def red_flag_rates(records: Iterable[Mapping[str, Any]]) -> Dict[str, Any]:
    """Recall (reports whose final intent is report_red_flag) and false-alarm rate
    (other messages whose final intent is report_red_flag), pooled and per source."""
    by_source: Dict[str, List[Mapping[str, Any]]] = defaultdict(list)
    records = list(records)
    for record in records:
        by_source[record["source"]].append(record)

    def rates(group: List[Mapping[str, Any]]) -> Dict[str, Any]:
        positives = [r for r in group if r["gold_red_flag"]]
        negatives = [r for r in group if not r["gold_red_flag"]]
        misses = [r for r in positives if r.get("intent") != RED_FLAG_INTENT]
        alarms = [r for r in negatives if r.get("intent") == RED_FLAG_INTENT]
        return {
            "positives": len(positives),
            "negatives": len(negatives),
            "caught": len(positives) - len(misses),
            "alarms": len(alarms),
            "recall": ratio(len(positives) - len(misses), len(positives)),
            "false_alarm_rate": ratio(len(alarms), len(negatives)),
            "misses": [(r["source"], r["text"], r.get("intent")) for r in misses],
            "false_alarms": [(r["source"], r["text"], r.get("gold_intent")) for r in alarms],
        }

    pooled = rates(records)
    pooled["by_source"] = {
        source: {k: v for k, v in rates(group).items() if k not in ("misses", "false_alarms")}
        for source, group in by_source.items()
    }
    return pooled


def report_scores(report: Mapping[str, Any]) -> Dict[str, Any]:
    """Weighted and macro precision, recall and F1 (and accuracy) of a Rasa report
    (intent_report.json, response_selection_report.json)."""
    weighted = report.get("weighted avg") or {}
    macro = report.get("macro avg") or {}
    accuracy = report.get("accuracy")
    if accuracy is None:  # scikit-learn writes "micro avg" instead when labels differ
        accuracy = (report.get("micro avg") or {}).get("f1-score")
    return {
        "precision": weighted.get("precision"),
        "recall": weighted.get("recall"),
        "f1": weighted.get("f1-score"),
        "macro_precision": macro.get("precision"),
        "macro_recall": macro.get("recall"),
        "macro_f1": macro.get("f1-score"),
        "accuracy": accuracy,
        "support": weighted.get("support"),
    }


def label_rows(report: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """Per-label rows of a Rasa report, without the averages and unseen labels."""
    return {
        label: value
        for label, value in report.items()
        if label not in AVERAGE_ROWS and isinstance(value, dict) and value.get("support")
    }


def weakest(report: Mapping[str, Any], n: int = 8) -> List[Dict[str, Any]]:
    """The n labels with the lowest F1 (ties: the most examples first)."""
    rows = [
        {
            "label": label,
            "precision": value.get("precision"),
            "recall": value.get("recall"),
            "f1": value.get("f1-score"),
            "support": value.get("support"),
            "confused_with": dict(list((value.get("confused_with") or {}).items())[:3]),
        }
        for label, value in label_rows(report).items()
    ]
    rows.sort(key=lambda row: (row["f1"], -row["support"], row["label"]))
    return rows[:n]


def label_f1(report: Optional[Mapping[str, Any]], label: str) -> Optional[float]:
    return ((report or {}).get(label) or {}).get("f1-score")


SWEEP_THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def answer_threshold_sweep(
    selections: Iterable[Mapping[str, Any]], thresholds: Iterable[float] = SWEEP_THRESHOLDS
) -> List[Dict[str, Any]]:
    """What each answer-fallback threshold would do to FAQ questions, from Rasa's
    response-selection successes and errors (``rasa test nlu --successes``): a question is
    answered when the selected answer's confidence reaches the threshold, right or wrong,
    and otherwise falls back to the article search. The answer selector alone: the intent
    classifier's own fallback and the red-flag detector are not applied here."""
    rows = [(r.get("intent_response_key_target"), (r.get("intent_response_key_prediction") or {}))
            for r in selections]
    scored = [(target, p.get("name"), p.get("confidence")) for target, p in rows if target]
    out = []
    for threshold in thresholds:
        answered = [(t, p) for t, p, c in scored if c is not None and c >= threshold]
        right = sum(1 for t, p in answered if t == p)
        out.append({
            "threshold": threshold,
            "questions": len(scored),
            "answered_right": right,
            "answered_wrong": len(answered) - right,
            "fallback": len(scored) - len(answered),
            "answered_right_share": ratio(right, len(scored)),
            "wrong_share_of_answers": ratio(len(answered) - right, len(answered)),
        })
    return out
