"""`make eval`: how well the NLU model understands patients (issue 6).

    python -m scripts.evaluate            # everything (about 2 hours on 2 cores)
    EVAL_SKIP_CV=1 python -m scripts.evaluate       # held-out set only
    EVAL_SKIP_DEFAULT=1 python -m scripts.evaluate  # our config only

For our config.yml and Rasa's default pipeline (scripts/default_config.yml), on the
same training data (data/nlu):

* held-out set (tests/nlu/heldout.yml): trains an NLU-only model, runs
  ``rasa test nlu`` on it (intent and response-selection reports, confusion
  matrices), and parses every held-out and red-flag evaluation message through the
  model for what Rasa's reports don't show: FAQ questions answered right, the share
  of fallbacks, red-flag recall and false-alarm rate;
* ``rasa test nlu --cross-validation`` with ``FOLDS`` folds (default 5).

Writes reports/eval.md (with the hand-kept reports/tuning_log.md), reports/eval.json
and the plots in reports/eval/. Work files (models, Rasa's outputs, logs) go to
results/eval/, where a trained model or a cross-validation is reused while its
inputs (config, data, components, knowledge, Rasa version, folds) are unchanged.

Modules: ``metrics`` (pure computations), ``render`` (markdown, summary line),
``run`` (the Rasa steps and the command line).
"""
