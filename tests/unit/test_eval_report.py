"""`make eval` (scripts/evaluate): its figures and its report, from small fake inputs."""
from pathlib import Path

import pytest
import yaml

from components.red_flags import INTENT_NAME
from scripts.evaluate import metrics, render, run

PROJECT = Path(__file__).resolve().parents[2]


def parse(intent, key=None, key_confidence=0.9, selector="faq"):
    """A parse result shaped like agent.parse_message's."""
    result = {"intent": {"name": intent, "confidence": 0.8}, "entities": []}
    if key:
        result["response_selector"] = {
            "all_retrieval_intents": ["faq"],
            selector: {"response": {"intent_response_key": key, "confidence": key_confidence}, "ranking": []},
        }
    return result


def heldout(text, gold_intent, predicted, gold_key=None, key=None):
    return metrics.make_record(text, parse(predicted, key), "heldout", gold_intent, gold_key)


RECORDS = [
    # FAQ questions: 2 answered right, 1 fallback with the right answer selected, 1 wrong answer,
    # 1 taken for a red flag.
    heldout("q1", "faq", "faq", "faq/bed", "faq/bed"),
    heldout("q2", "faq", "faq", "faq/xray", "faq/xray"),
    heldout("q3", "faq", "nlu_fallback", "faq/risks", "faq/risks"),
    heldout("q4", "faq", "faq", "faq/causes", "faq/symptoms"),
    heldout("q5", "faq", INTENT_NAME, "faq/both_legs", "faq/both_legs"),
    # other intents: greet right, thank fallback, out_of_scope fallback and out_of_scope taken for faq
    heldout("hi", "greet", "greet"),
    heldout("ta", "thank", "nlu_fallback"),
    heldout("cat", "out_of_scope", "nlu_fallback"),
    heldout("stocks", "out_of_scope", "faq", key="faq/bed"),
    # red-flag reports: one caught, one missed
    heldout("wet myself", INTENT_NAME, INTENT_NAME),
    heldout("legs gave out", INTENT_NAME, "describe_symptoms"),
    # a red-flag evaluation set: 2 positives caught, 1 negative raising a false alarm, 1 not
    metrics.make_record("cant pee", parse(INTENT_NAME), "eval.yml", gold_red_flag=True),
    metrics.make_record("bum numb", parse(INTENT_NAME), "eval.yml", gold_red_flag=True),
    metrics.make_record("what is foot drop", parse(INTENT_NAME), "eval.yml", gold_red_flag=False),
    metrics.make_record("I pee fine", parse("deny"), "eval.yml", gold_red_flag=False),
]


def test_red_flag_intent_is_the_detectors():
    assert metrics.RED_FLAG_INTENT == INTENT_NAME


def test_selected_response_reads_the_retrieval_intent_or_default():
    assert metrics.selected_response(parse("faq", "faq/bed", 0.7)) == ("faq/bed", 0.7)
    assert metrics.selected_response(parse("faq", "faq/bed", 0.4, selector="default")) == ("faq/bed", 0.4)
    assert metrics.selected_response(parse("greet")) == (None, None)


def test_answered_right_needs_the_faq_intent_and_the_gold_topic():
    right, fallback, wrong, red_flag = RECORDS[0], RECORDS[2], RECORDS[3], RECORDS[4]
    assert metrics.answered_right(right)
    assert not metrics.answered_right(fallback)  # right answer selected, but the fallback answered
    assert not metrics.answered_right(wrong)
    assert not metrics.answered_right(red_flag)
    assert not metrics.answered_right(RECORDS[5])  # not a FAQ question


def test_heldout_summary_counts_answers_and_fallbacks():
    summary = metrics.heldout_summary(RECORDS)
    assert summary["messages"] == 11  # the red-flag set's records have no gold intent
    assert summary["faq_questions"] == 5
    assert summary["answered_right"] == 2
    assert summary["answered_right_share"] == pytest.approx(2 / 5)
    assert summary["selector_right"] == 4
    assert summary["faq_outcomes"] == {
        "answered right": 2, "fallback": 1, "wrong answer": 1, f"intent {INTENT_NAME}": 1}
    assert summary["other_messages"] == 6
    assert summary["other_intent_right"] == 2  # greet, one red flag
    assert summary["fallback"] == {"n": 11, "fallbacks": 3, "share": pytest.approx(3 / 11)}
    groups = summary["fallback_by_group"]
    assert groups["faq"]["fallbacks"] == 1 and groups["faq"]["n"] == 5
    assert groups["out_of_scope"] == {"n": 2, "fallbacks": 1, "share": 0.5}
    assert groups["other in scope"]["n"] == 4 and groups["other in scope"]["fallbacks"] == 1


def test_red_flag_rates_pool_the_sources():
    rates = metrics.red_flag_rates(RECORDS)
    assert (rates["positives"], rates["caught"]) == (4, 3)
    assert rates["recall"] == pytest.approx(3 / 4)
    # negatives: 9 held-out (q5 is a FAQ question taken for a red flag) and 2 from eval.yml
    assert (rates["negatives"], rates["alarms"]) == (11, 2)
    assert rates["false_alarm_rate"] == pytest.approx(2 / 11)
    assert rates["misses"] == [("heldout", "legs gave out", "describe_symptoms")]
    assert sorted(text for _, text, _ in rates["false_alarms"]) == ["q5", "what is foot drop"]
    assert rates["by_source"]["eval.yml"]["recall"] == 1.0
    assert rates["by_source"]["eval.yml"]["false_alarm_rate"] == 0.5
    assert rates["by_source"]["heldout"]["recall"] == 0.5


def test_rates_without_examples_are_none():
    assert metrics.red_flag_rates([])["recall"] is None
    assert metrics.heldout_summary([])["answered_right_share"] is None


REPORT = {
    "greet": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 6, "confused_with": {}},
    "faq": {"precision": 0.9, "recall": 0.95, "f1-score": 0.92, "support": 200, "confused_with": {"greet": 2}},
    "unsure": {"precision": 0.5, "recall": 0.4, "f1-score": 0.44, "support": 6,
               "confused_with": {"faq": 3, "deny": 1}},
    "deny": {"precision": 0.5, "recall": 0.4, "f1-score": 0.44, "support": 9, "confused_with": {}},
    "nlu_fallback": {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0},
    "accuracy": 0.9,
    "macro avg": {"precision": 0.7, "recall": 0.69, "f1-score": 0.7, "support": 221},
    "weighted avg": {"precision": 0.88, "recall": 0.9, "f1-score": 0.89, "support": 221},
}


def test_report_scores_and_weakest_labels():
    scores = metrics.report_scores(REPORT)
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.88, 0.9, 0.89)
    assert scores["macro_f1"] == 0.7 and scores["accuracy"] == 0.9
    micro = {k: v for k, v in REPORT.items() if k != "accuracy"}
    micro["micro avg"] = {"f1-score": 0.91}
    assert metrics.report_scores(micro)["accuracy"] == 0.91
    weakest = metrics.weakest(REPORT, n=3)
    # the averages and labels never seen (support 0) are left out; ties: more examples first
    assert [row["label"] for row in weakest] == ["deny", "unsure", "faq"]
    assert weakest[1]["confused_with"] == {"faq": 3, "deny": 1}


def results(with_default=True):
    ours = {
        "config": "config.yml",
        "status": {"heldout": "done", "cv": "done"},
        "heldout": {
            "intent": metrics.report_scores(REPORT),
            "response_selection": {"precision": 0.93, "recall": 0.92, "f1": 0.925, "macro_f1": 0.9},
            "summary": metrics.heldout_summary(RECORDS),
            "red_flags": metrics.red_flag_rates(RECORDS),
            "weakest_intents": metrics.weakest(REPORT, 2),
            "train_seconds": 333,
            "images": {"intent confusion matrix": "eval/ours_heldout_intent_confusion.png"},
        },
        "cv": {"intent": {"f1": 0.901, "macro_f1": 0.848}, "response_selection": {"f1": 0.952, "macro_f1": 0.953},
               "seconds": 1740},
    }
    default = {
        "config": "scripts/default_config.yml",
        "status": {"heldout": "done", "cv": "skipped"},
        "heldout": {
            "intent": {"f1": 0.79, "precision": 0.8, "recall": 0.78},
            "response_selection": {"f1": 0.9},
            "summary": {"answered_right_share": 0.5, "fallback": {"share": 0.1}},
            "red_flags": {"recall": 0.75, "false_alarm_rate": 0.0},
            "f1_by_intent": {"deny": 0.3, "unsure": 0.6},
        },
        "cv": None,
    }
    configs = {"ours": ours, "default": default} if with_default else {"ours": ours}
    return {"generated": "2026-01-01 00:00 UTC", "commit": "abc1234", "folds": 5, "training_data": "data/nlu",
            "heldout_file": "tests/nlu/heldout.yml", "red_flag_sets": ["tests/red_flags/eval.yml"],
            "order": list(configs), "configs": configs}


def test_summary_line_gives_ours_and_the_difference_to_the_default():
    line = render.summary_line(results())
    ours, _, versus = line.partition(" vs_default: ")
    assert ours.split() == [
        "heldout_intent_f1=0.890", "heldout_rs_f1=0.925", "answered=0.400", "fallback=0.273",
        "rf_recall=0.750", "rf_false_alarm=0.182", "cv_intent_f1=0.901", "cv_rs_f1=0.952"]
    assert "heldout_intent_f1=+0.100" in versus
    assert "answered=-0.100" in versus
    assert "rf_false_alarm=+0.182" in versus
    assert "cv_intent_f1=–" in versus  # the default's cross-validation was skipped
    assert render.summary_line(results(with_default=False)).endswith("vs_default: not run")


def test_report_has_the_figures_the_plots_and_the_tuning_log():
    text = render.render_report(results(), "# Tuning log\n\n| change | bought |\n|---|---|\n| epochs 60 | +0.01 |\n")
    assert "| held-out intent F1 (weighted) | 0.890 | 0.790 | +0.100 |" in text
    assert "| FAQ questions answered right (right answer, no fallback) | 40.0% (2/5) | 50.0% | -10.0 pts |" in text
    assert "| red-flag recall (held-out and red-flag sets) | 75.0% (3/4) | 75.0% | +0.0 pts |" in text
    assert "| cross-validation intent F1 (weighted) | 0.901 | – | – |" in text
    # the weakest intents, with the default's F1 for the same label
    assert "| `deny` | 9 | 0.500 | 0.400 | 0.440 | 0.300 | – |" in text
    assert "![ours heldout intent confusion matrix](eval/ours_heldout_intent_confusion.png)" in text
    assert "- missed (heldout): \"legs gave out\" → `describe_symptoms`" in text
    assert "| epochs 60 | +0.01 |" in text
    assert text.count("Tuning log") == 1  # the log's own heading is dropped
    assert "| cross-validation (5 folds) | done, 29 min 00 s | skipped, – |" in text


def test_readme_block_is_replaced_between_the_markers_only():
    block = render.readme_block(results())
    assert block.startswith(render.README_START) and block.endswith(render.README_END)
    assert "0.890" in block and "reports/eval.md" in block
    readme = f"intro\n{render.README_START}\nold figures\n{render.README_END}\nrest\n"
    updated = render.update_readme(readme, block)
    assert updated.startswith("intro\n") and updated.endswith("\nrest\n")
    assert "old figures" not in updated and "0.890" in updated
    assert render.update_readme("no markers here", block) is None


def test_default_config_is_rasas_auto_configuration():
    import rasa.engine.recipes.default_recipe as recipe

    rasa_default = yaml.safe_load(
        (Path(recipe.__file__).parent / "config_files" / "default_config.yml").read_text())
    ours = yaml.safe_load((PROJECT / "scripts" / "default_config.yml").read_text())
    assert ours["pipeline"] == rasa_default["pipeline"]
    assert ours["policies"] == rasa_default["policies"]
    assert ours["recipe"] == rasa_default["recipe"] and ours["language"] == "en"


def test_log_watcher_follows_folds_components_and_epochs(tmp_path):
    log = tmp_path / "cv.log"
    log.write_text(
        "INFO rasa.engine.training.hooks - Starting to train component 'DIETClassifier'.\n"
        "Epochs:  10%|#         | 6/60 [00:05<00:45, 1.2it/s, t_loss=3.1]\r"
        "INFO rasa.nlu.test - Running model for predictions:\n"
        "INFO rasa.engine.training.hooks - Starting to train component 'DIETClassifier'.\n"
        "INFO rasa.engine.training.hooks - Starting to train component 'ResponseSelector'.\n"
        "Epochs:  45%|####5     | 27/60 [00:30<00:37, 1.0s/it, t_loss=2.0]\r")
    watcher = run.LogWatcher(log)
    assert watcher.poll() == "training ResponseSelector, epochs 45% (27/60)"
    assert watcher.folds == 2
    with log.open("a") as handle:
        handle.write("INFO rasa.nlu.test - Running model for predictions:\n")
    assert watcher.poll() == "predicting" and watcher.folds == 2

    # any pipeline: a fold starts with the first component trained after predictions
    ours = tmp_path / "ours.log"
    fold = ("INFO rasa.engine.training.hooks - Starting to train component 'CountVectorsFeaturizer'.\n"
            "INFO rasa.engine.training.hooks - Starting to train component 'TopicIntentClassifier'.\n"
            "INFO rasa.engine.training.hooks - Starting to train component 'AnswerBlend'.\n")
    ours.write_text(fold + "INFO rasa.nlu.test - Running model for predictions:\n" + fold)
    watcher = run.LogWatcher(ours)
    assert watcher.poll() == "training AnswerBlend" and watcher.folds == 2


def test_options_from_the_environment(monkeypatch):
    for name in ("FOLDS", "EVAL_SKIP_CV", "EVAL_SKIP_DEFAULT", "EVAL_EXTRA_CONFIGS", "EVAL_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    settings = run.parse_args([])
    assert settings.folds == 5 and not settings.skip_cv
    assert [name for name, _ in settings.configs] == ["ours", "default"]
    assert settings.configs[0][1] == PROJECT / "config.yml"
    monkeypatch.setenv("FOLDS", "3")
    monkeypatch.setenv("EVAL_SKIP_CV", "1")
    monkeypatch.setenv("EVAL_SKIP_DEFAULT", "1")
    monkeypatch.setenv("EVAL_EXTRA_CONFIGS", "lr=scripts/default_config.yml")
    settings = run.parse_args([])
    assert settings.folds == 3 and settings.skip_cv
    assert [name for name, _ in settings.configs] == ["ours", "lr"]
    monkeypatch.setenv("EVAL_SKIP_CV", "0")
    assert not run.parse_args([]).skip_cv
    monkeypatch.setenv("EVAL_EXTRA_CONFIGS", "nopath")
    with pytest.raises(SystemExit):
        run.parse_args([])


def test_inputs_key_changes_with_the_config_and_the_data(tmp_path):
    config, nlu = tmp_path / "config.yml", tmp_path / "nlu"
    nlu.mkdir()
    config.write_text("pipeline: []\n")
    (nlu / "a.yml").write_text("nlu: []\n")
    key = run.inputs_key(config, nlu)
    assert run.inputs_key(config, nlu) == key
    assert run.inputs_key(config, nlu, "folds=3") != key
    config.write_text("pipeline: [{name: WhitespaceTokenizer}]\n")
    changed = run.inputs_key(config, nlu)
    assert changed != key
    (nlu / "a.yml").write_text("nlu: [{intent: greet, examples: '- hi'}]\n")
    assert run.inputs_key(config, nlu) != changed


def test_only_ours_is_cross_validated_unless_asked(monkeypatch):
    for name in ("EVAL_CV_ALL", "EVAL_SKIP_DEFAULT", "EVAL_EXTRA_CONFIGS"):
        monkeypatch.delenv(name, raising=False)
    assert not run.parse_args([]).cv_all
    monkeypatch.setenv("EVAL_CV_ALL", "1")
    assert run.parse_args([]).cv_all


def test_make_benchs_full_model_is_reused_for_unchanged_inputs(tmp_path, monkeypatch):
    from scripts.bench import train as bench_train

    monkeypatch.setattr(bench_train, "CACHE", tmp_path / "bench")
    monkeypatch.delenv("EVAL_FORCE", raising=False)
    settings = run.parse_args(["--work", str(tmp_path / "work")])
    config = PROJECT / "scripts/default_config.yml"
    trained = []
    monkeypatch.setattr(run, "run_logged", lambda *args, **kwargs: trained.append(args) or 0.0)

    kept = bench_train.cached_model("default", config)
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"a model")
    model, seconds, source = run.train(run.Progress(), "default", config, settings)
    assert (model, seconds, source) == (kept, None, "make bench (full model)") and not trained

    # another pipeline's name, other training data, or EVAL_FORCE: the bench's model is not used
    with pytest.raises(RuntimeError, match="training wrote no model"):
        run.train(run.Progress(), "ours", config, settings)
    other = run.parse_args(["--work", str(tmp_path / "work"), "--nlu", str(tmp_path)])
    assert run.bench_model("default", config, other) is None
    forced = run.parse_args(["--work", str(tmp_path / "work"), "--force"])
    with pytest.raises(RuntimeError, match="training wrote no model"):
        run.train(run.Progress(), "default", config, forced)
    assert len(trained) == 2


def test_readme_needs_ours_cross_validated_and_every_config_held_out(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{render.README_START}\nFIGURES-BEFORE\n{render.README_END}\n")
    monkeypatch.delenv("EVAL_NO_README", raising=False)
    settings = run.parse_args(["--out", str(tmp_path / "reports")])
    monkeypatch.setattr(run, "PROJECT", tmp_path)
    (tmp_path / "reports").mkdir()

    incomplete = results()
    incomplete["configs"]["default"]["heldout"] = None
    run.maybe_update_readme(incomplete, settings, run.Progress())
    assert "FIGURES-BEFORE" in readme.read_text()
    run.maybe_update_readme(results(with_default=False), settings, run.Progress())
    assert "FIGURES-BEFORE" in readme.read_text()

    run.maybe_update_readme(results(), settings, run.Progress())  # the default's CV was not run
    assert "FIGURES-BEFORE" not in readme.read_text() and "0.890" in readme.read_text()


def test_answer_threshold_sweep_counts_answers_right_wrong_and_fallbacks(tmp_path):
    def selection(target, predicted, confidence):
        return {"text": "q", "intent_response_key_target": target,
                "intent_response_key_prediction": {"name": predicted, "confidence": confidence}}

    picks = [selection("faq/bed", "faq/bed", 0.9), selection("faq/xray", "faq/xray", 0.45),
             selection("faq/risks", "faq/causes", 0.55), selection("faq/risks", "faq/causes", 0.25),
             selection("", "faq/bed", 0.9)]  # no answer key: not an FAQ question
    rows = {row["threshold"]: row for row in metrics.answer_threshold_sweep(picks, (0.2, 0.5, 0.95))}
    assert rows[0.2] == {"threshold": 0.2, "questions": 4, "answered_right": 2, "answered_wrong": 2, "fallback": 0,
                         "answered_right_share": 0.5, "wrong_share_of_answers": 0.5}
    assert (rows[0.5]["answered_right"], rows[0.5]["answered_wrong"], rows[0.5]["fallback"]) == (1, 1, 2)
    assert rows[0.95]["fallback"] == 4 and rows[0.95]["wrong_share_of_answers"] is None

    # read from the files Rasa's cross-validation writes, and shown in the report with the current threshold
    import json
    (tmp_path / "response_selection_successes.json").write_text(json.dumps(picks[:2]))
    assert run.threshold_sweep(tmp_path) is None  # no errors file: not a run with both lists
    (tmp_path / "response_selection_errors.json").write_text(json.dumps(picks[2:]))
    sweep = run.threshold_sweep(tmp_path)
    assert [row["questions"] for row in sweep] == [4] * len(metrics.SWEEP_THRESHOLDS)
    data = results()
    data["configs"]["ours"]["cv"]["answer_threshold_sweep"] = sweep
    data["configs"]["ours"]["answer_fallback_threshold"] = 0.5
    text = render.render_report(data)
    assert "| 0.5 (current) | 25.0% (1) | 1 | 50.0% | 2 |" in text
    assert run.answer_fallback_threshold(PROJECT / "config.yml") is not None
    assert run.answer_fallback_threshold(PROJECT / "scripts/default_config.yml") is None
