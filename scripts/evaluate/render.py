"""The report of `make eval`: markdown (reports/eval.md), the README's block, the summary line.

Everything here reads the results dictionary that ``run`` builds (and writes to
reports/eval.json); nothing runs Rasa.
"""
from __future__ import annotations

import re
from typing import Any, List, Mapping, Optional, Sequence, Tuple

README_START = "<!-- make-eval:start -->"
README_END = "<!-- make-eval:end -->"

# key, label, path into a config's results, format, optional (numerator, denominator) paths
Metric = Tuple[str, str, Tuple[str, ...], str, Optional[Tuple[Tuple[str, ...], Tuple[str, ...]]]]
S = ("heldout", "summary")
HEADLINE: List[Metric] = [
    ("heldout_intent_precision", "held-out intent precision (weighted)", ("heldout", "intent", "precision"), "f", None),
    ("heldout_intent_recall", "held-out intent recall (weighted)", ("heldout", "intent", "recall"), "f", None),
    ("heldout_intent_f1", "held-out intent F1 (weighted)", ("heldout", "intent", "f1"), "f", None),
    ("heldout_intent_macro_f1", "held-out intent F1 (macro)", ("heldout", "intent", "macro_f1"), "f", None),
    ("heldout_rs_precision", "held-out response selection precision (weighted)", ("heldout", "response_selection", "precision"), "f", None),
    ("heldout_rs_recall", "held-out response selection recall (weighted)", ("heldout", "response_selection", "recall"), "f", None),
    ("heldout_rs_f1", "held-out response selection F1 (weighted)", ("heldout", "response_selection", "f1"), "f", None),
    ("heldout_rs_macro_f1", "held-out response selection F1 (macro)", ("heldout", "response_selection", "macro_f1"), "f", None),
    ("answered", "FAQ questions answered right (right answer, no fallback)", S + ("answered_right_share",), "pct",
     (S + ("answered_right",), S + ("faq_questions",))),
    ("selector_right", "FAQ questions whose selected answer is right (fallback or not)", S + ("selector_right_share",), "pct",
     (S + ("selector_right",), S + ("faq_questions",))),
    ("other_right", "other messages with the right final intent", S + ("other_intent_right_share",), "pct",
     (S + ("other_intent_right",), S + ("other_messages",))),
    ("fallback", "fallback share, all held-out messages", S + ("fallback", "share"), "pct",
     (S + ("fallback", "fallbacks"), S + ("fallback", "n"))),
    ("fallback_faq", "fallback share, FAQ questions", S + ("fallback_by_group", "faq", "share"), "pct",
     (S + ("fallback_by_group", "faq", "fallbacks"), S + ("fallback_by_group", "faq", "n"))),
    ("fallback_other", "fallback share, other in-scope messages", S + ("fallback_by_group", "other in scope", "share"), "pct",
     (S + ("fallback_by_group", "other in scope", "fallbacks"), S + ("fallback_by_group", "other in scope", "n"))),
    ("fallback_oos", "fallback share, out-of-scope messages", S + ("fallback_by_group", "out_of_scope", "share"), "pct",
     (S + ("fallback_by_group", "out_of_scope", "fallbacks"), S + ("fallback_by_group", "out_of_scope", "n"))),
    ("rf_recall", "red-flag recall (held-out and red-flag sets)", ("heldout", "red_flags", "recall"), "pct",
     (("heldout", "red_flags", "caught"), ("heldout", "red_flags", "positives"))),
    ("rf_false_alarm", "red-flag false-alarm rate (held-out and red-flag sets)", ("heldout", "red_flags", "false_alarm_rate"), "pct",
     (("heldout", "red_flags", "alarms"), ("heldout", "red_flags", "negatives"))),
    ("cv_intent_f1", "cross-validation intent F1 (weighted)", ("cv", "intent", "f1"), "f", None),
    ("cv_intent_macro_f1", "cross-validation intent F1 (macro)", ("cv", "intent", "macro_f1"), "f", None),
    ("cv_rs_f1", "cross-validation response selection F1 (weighted)", ("cv", "response_selection", "f1"), "f", None),
    ("cv_rs_macro_f1", "cross-validation response selection F1 (macro)", ("cv", "response_selection", "macro_f1"), "f", None),
]
SUMMARY_KEYS = [
    "heldout_intent_f1", "heldout_rs_f1", "answered", "fallback",
    "rf_recall", "rf_false_alarm", "cv_intent_f1", "cv_rs_f1",
]
README_KEYS = [
    "heldout_intent_f1", "heldout_rs_f1", "answered", "fallback_faq", "fallback",
    "rf_recall", "rf_false_alarm", "cv_intent_f1", "cv_rs_f1",
]
METRICS = {metric[0]: metric for metric in HEADLINE}


def dig(data: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data


def value(config_results: Mapping[str, Any], key: str) -> Optional[float]:
    return dig(config_results, METRICS[key][2])


def fmt(number: Optional[float], kind: str = "f") -> str:
    if number is None:
        return "–"
    return f"{number:.1%}" if kind == "pct" else f"{number:.3f}"


def fmt_delta(delta: Optional[float], kind: str = "f") -> str:
    if delta is None:
        return "–"
    text = f"{delta * 100:+.1f} pts" if kind == "pct" else f"{delta:+.3f}"
    return text.replace("-0.0 ", "+0.0 ") if text.startswith("-0.0 ") else text.replace("-0.000", "+0.000")


def delta(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None else a - b


def cell(config_results: Mapping[str, Any], metric: Metric) -> str:
    key, _, path, kind, counts = metric
    text = fmt(dig(config_results, path), kind)
    if counts and dig(config_results, path) is not None:
        part, whole = dig(config_results, counts[0]), dig(config_results, counts[1])
        if part is not None and whole is not None:
            text += f" ({part}/{whole})"
    return text


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def headline_table(results: Mapping[str, Any], keys: Optional[Sequence[str]] = None) -> str:
    names = list(results["order"])
    configs = results["configs"]
    with_delta = "ours" in configs and "default" in configs
    header = ["", *[f"{name} (`{configs[name]['config']}`)" for name in names]]
    if with_delta:
        header.append("ours − default")
    rows = []
    for metric in HEADLINE if keys is None else [METRICS[k] for k in keys]:
        row = [metric[1], *[cell(configs[name], metric) for name in names]]
        if with_delta:
            row.append(fmt_delta(delta(value(configs["ours"], metric[0]), value(configs["default"], metric[0])), metric[3]))
        rows.append(row)
    return md_table(header, rows)


def summary_line(results: Mapping[str, Any]) -> str:
    """heldout_intent_f1=0.901 … cv_rs_f1=0.950 vs_default: heldout_intent_f1=+0.012 …

    Every figure a fraction (answered=0.776 is 77.6%); after ``vs_default:`` ours − default;
    "–" where not measured."""
    configs = results["configs"]
    ours = configs.get("ours") or {}
    parts = [f"{key}={fmt(value(ours, key))}" for key in SUMMARY_KEYS]
    line = " ".join(parts)
    if "default" in configs:
        deltas = []
        for key in SUMMARY_KEYS:
            d = delta(value(ours, key), value(configs["default"], key))
            deltas.append(f"{key}={fmt_delta(d)}")
        line += " vs_default: " + " ".join(deltas)
    else:
        line += " vs_default: not run"
    return line


def _time(seconds: Optional[float]) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _status(config_results: Mapping[str, Any], part: str) -> str:
    return (config_results.get("status") or {}).get(part, "not run")


def _weakest_table(results: Mapping[str, Any], part: str, kind: str) -> str:
    configs = results["configs"]
    ours = dig(configs, ("ours", part)) or {}
    rows_ours = ours.get(f"weakest_{kind}") or []
    if not rows_ours:
        return "_not measured_"
    others = [n for n in results["order"] if n != "ours"]
    header = ["label", "examples", "precision", "recall", "F1", *[f"F1 {n}" for n in others], "mostly confused with"]
    rows = []
    for row in rows_ours:
        confused = ", ".join(f"{label} ({count})" for label, count in (row.get("confused_with") or {}).items())
        rows.append([
            f"`{row['label']}`", row["support"], fmt(row["precision"]), fmt(row["recall"]), fmt(row["f1"]),
            *[fmt(dig(configs, (n, part, f"f1_by_{kind[:-1]}", row["label"]))) for n in others],
            confused or "–",
        ])
    return md_table(header, rows)


def _red_flag_section(results: Mapping[str, Any]) -> List[str]:
    configs, names = results["configs"], results["order"]
    out: List[str] = []
    sources: List[str] = []
    for name in names:
        for source in (dig(configs, (name, "heldout", "red_flags", "by_source")) or {}):
            if source not in sources:
                sources.append(source)
    rows = []
    for source in sources:
        row = [f"`{source}`"]
        for name in names:
            rates = dig(configs, (name, "heldout", "red_flags", "by_source", source)) or {}
            row.append(f"{fmt(rates.get('recall'), 'pct')} of {rates.get('positives', '–')}")
            row.append(f"{fmt(rates.get('false_alarm_rate'), 'pct')} of {rates.get('negatives', '–')}")
        rows.append(row)
    if rows:
        header = ["source"]
        for name in names:
            header += [f"{name}: recall", f"{name}: false alarms"]
        out += [md_table(header, rows), ""]
    strict_rows = []
    for name in names:
        for set_name, strict in (dig(configs, (name, "heldout", "red_flag_sets_strict")) or {}).items():
            strict_rows.append([name, f"`{set_name}`", fmt(strict.get("recall"), "pct"), fmt(strict.get("false_alarm_rate"), "pct")])
    if strict_rows:
        out += [
            "The same red-flag sets scored as `scripts/eval_red_flags.py --model` does, which also "
            "requires every expected sign to be named as a `red_flag` entity (only our "
            "RedFlagDetector names signs, so Rasa's default pipeline scores 0% recall here by "
            "construction):",
            "",
            md_table(["config", "set", "recall, signs named", "false alarms"], strict_rows),
            "",
        ]
    ours = dig(configs, ("ours", "heldout", "red_flags")) or {}
    misses, alarms = ours.get("misses") or [], ours.get("false_alarms") or []
    if misses or alarms:
        out.append(f"Our model's missed reports ({len(misses)}) and false alarms ({len(alarms)}):")
        out.append("")
        out += [f"- missed ({source}): \"{text}\" → `{intent}`" for source, text, intent in misses]
        out += [f"- false alarm ({source}): \"{text}\"" + (f" (gold `{gold}`)" if gold else "") for source, text, gold in alarms]
        out.append("")
    return out


def _threshold_section(results: Mapping[str, Any]) -> List[str]:
    ours = results["configs"].get("ours") or {}
    sweep = dig(ours, ("cv", "answer_threshold_sweep"))
    if not sweep:
        return ["_not measured (needs a cross-validation with `--successes`)_", ""]
    current = ours.get("answer_fallback_threshold")
    rows = [[f"{row['threshold']:.1f}" + (" (current)" if row["threshold"] == current else ""),
             f"{fmt(row['answered_right_share'], 'pct')} ({row['answered_right']})", row["answered_wrong"],
             fmt(row["wrong_share_of_answers"], "pct"), row["fallback"]] for row in sweep]
    return [
        "What the answer-fallback threshold (`ResponseSelectionFallback`) would do, on our "
        f"cross-validation's pooled answer predictions ({sweep[0]['questions']} FAQ training questions, each "
        "predicted by a model that did not see it). A question is answered when the selected answer's "
        "confidence reaches the threshold and falls back to the article search otherwise; the "
        "intent classifier's own fallback is not applied here. The threshold is chosen on these "
        "figures, not on the held-out set.",
        "",
        md_table(["threshold", "answered right", "answered wrong", "wrong share of answers", "fall back"], rows),
        "",
    ]


def _images(results: Mapping[str, Any], part: str) -> List[str]:
    out = []
    for name in results["order"]:
        for label, path in (dig(results["configs"], (name, part, "images")) or {}).items():
            out += [f"**{name}, {label}**", "", f"![{name} {part} {label}]({path})", ""]
    return out


def render_report(results: Mapping[str, Any], tuning_log: str = "") -> str:
    configs, names = results["configs"], results["order"]
    lines = [
        "# NLU evaluation (`make eval`)",
        "",
        f"Generated {results.get('generated', '–')} from commit {results.get('commit', '–')} by "
        f"`make eval` (`python -m scripts.evaluate`); every figure is also in `eval.json`. "
        f"Training data `{results.get('training_data')}` ({results.get('training_examples', '–')} examples); "
        f"held-out set `{results.get('heldout_file')}` ({results.get('heldout_messages', '–')} messages, written "
        f"apart from the training data); red-flag sets "
        + ", ".join(f"`{s}`" for s in results.get("red_flag_sets") or []) + ". "
        f"Configs: " + ", ".join(f"**{n}** = `{configs[n]['config']}`" for n in names) + ".",
        "",
        "## Headline figures",
        "",
        headline_table(results),
        "",
        "| run | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
        "| held-out | " + " | ".join(
            f"{_status(configs[n], 'heldout')}, training {_time(dig(configs, (n, 'heldout', 'train_seconds')))}"
            for n in names) + " |",
        f"| cross-validation ({results.get('folds')} folds) | " + " | ".join(
            f"{_status(configs[n], 'cv')}, {_time(dig(configs, (n, 'cv', 'seconds')))}" for n in names) + " |",
        "",
        "How the figures are measured:",
        "",
        "- **Intent and response-selection precision, recall, F1** are Rasa's own reports "
        "(`rasa test nlu`), weighted by examples per label, and macro (every label counts the "
        "same). Rasa scores the intent *before* the fallback (it undoes `nlu_fallback` and takes "
        "the next intent), and the answer selector on every FAQ question whatever the intent; "
        "the red-flag detector's decisions count. The fallback is measured separately below.",
        "- **Answered right**: a FAQ question whose final intent is `faq` and whose selected answer "
        "is its topic; a fallback, another intent or another answer counts as not answered.",
        "- **Fallback share**: messages whose final intent is `nlu_fallback` (the FallbackClassifier, "
        "or our ResponseSelectionFallback when the best answer is unsure); they get the article "
        "search instead of an answer. For out-of-scope messages a fallback is a safe outcome; for "
        "FAQ questions it is a missed answer.",
        "- **Red-flag recall**: red-flag reports (held-out `report_red_flag` messages and the "
        "positives of the red-flag sets) whose final intent is `report_red_flag`, i.e. that get the "
        "urgent message. **False-alarm rate**: every other message (the rest of the held-out set "
        "and the red-flag sets' negatives) that gets it.",
        "- **Cross-validation**: `rasa test nlu --cross-validation` on the training data, test "
        "folds pooled. Ours is cross-validated in every run; the default pipeline only with "
        "`EVAL_CV_ALL=1`, because its 5 folds take about 3 hours on 2 cores (a DIETClassifier and "
        "a ResponseSelector of 100 epochs each per fold), so the two are compared on the held-out set.",
        "- **Models**: trained with `rasa train nlu` on the training data, or reused when their "
        "inputs are unchanged: from an earlier `make eval`, or the full model `make bench` kept "
        "(same config and data; its NLU part is what is evaluated).",
        f"- Every prediction is in `{results.get('work', 'results/eval')}/<config>/predictions.json`, Rasa's "
        f"error lists in `{results.get('work', 'results/eval')}/<config>/heldout/` and `.../cv/`.",
        "",
        "## Held-out set",
        "",
    ]
    for name in names:
        outcomes = dig(configs, (name, "heldout", "summary", "faq_outcomes"))
        if outcomes:
            lines.append(f"- {name}, FAQ questions: " + ", ".join(f"{k} {v}" for k, v in outcomes.items()))
    lines += ["", "### Red flags", ""]
    lines += _red_flag_section(results)
    lines += [
        "### Weakest intents (held-out, ours)", "", _weakest_table(results, "heldout", "intents"), "",
        "### Weakest FAQ topics (held-out, ours)", "", _weakest_table(results, "heldout", "topics"), "",
        "## Cross-validation", "",
        "### Weakest intents (cross-validation, ours)", "", _weakest_table(results, "cv", "intents"), "",
        "### Weakest FAQ topics (cross-validation, ours)", "", _weakest_table(results, "cv", "topics"), "",
        "### Answer-fallback threshold (cross-validation, ours)", "", *_threshold_section(results),
        "## Plots", "",
    ]
    if results.get("comparison_plot"):
        lines += [f"![ours against the default pipeline]({results['comparison_plot']})", ""]
    lines += ["### Confusion matrices, held-out set", ""] + _images(results, "heldout")
    lines += ["### Confusion matrices, cross-validation", ""] + _images(results, "cv")
    lines += ["## Tuning log", "", _tuning_log_body(tuning_log) or "_reports/tuning_log.md is empty._", ""]
    return "\n".join(lines)


def _tuning_log_body(text: str) -> str:
    """The hand-kept tuning log without its own top heading."""
    lines = text.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip()


def readme_block(results: Mapping[str, Any]) -> str:
    return "\n".join([
        README_START,
        f"Latest `make eval` ({results.get('generated', '–')}, commit {results.get('commit', '–')}, "
        f"{results.get('folds')}-fold cross-validation; full report in "
        "[`reports/eval.md`](reports/eval.md)):",
        "",
        headline_table(results, README_KEYS),
        README_END,
    ])


def update_readme(readme: str, block: str) -> Optional[str]:
    """The README with the block between the markers replaced, or None without markers."""
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.S)
    if not pattern.search(readme):
        return None
    return pattern.sub(lambda _: block, readme, count=1)
