# Two commands: `make run` and `make test`. Everything else is what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     := .venv
PY       := $(VENV)/bin/python
RASA     := $(VENV)/bin/rasa
STAMP    := $(VENV)/.installed
LOCK     := requirements.lock
VENDOR_JS := web/public/widget/vendor/socket.io.min.js
CHROMIUM := /usr/bin/chromium

# Python 3.10: Rasa 3.6 does not run on 3.11 or newer.
PYTHON310 := $(shell \
  for c in "$$(pyenv root 2>/dev/null)/versions/3.10.13/bin/python" \
           "$$(ls -d $$(pyenv root 2>/dev/null)/versions/3.10.*/bin/python 2>/dev/null | tail -n1)" \
           "$$(command -v python3.10)"; do \
    if [ -n "$$c" ] && [ -x "$$c" ] && "$$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then \
      echo "$$c"; break; fi; done)

export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export RASA_TELEMETRY_ENABLED := false

.PHONY: help setup model run test test-stories validate browser bench cross-validate eval eval-red-flags clean lock \
        review-user review-screenshots postgres redis nginx run-prod test-prod

help:
	@echo "make run    - set up, train if needed, and start the assistant (Rasa :5005, actions :5055, chat page :8080, review app :8081)"
	@echo "make test   - set up, train if needed, and run every test"
	@echo "make run-prod  - the replicated set-up: PostgreSQL, Redis, 2 Rasa replicas, actions, nginx on :8088 (README 'Production')"
	@echo "make test-prod - that set-up under faults (tests/topology): concurrency, a replica killed, PostgreSQL restarted,"
	@echo "                 the action server, Redis and the notification target down"
	@echo "make bench  - how fast and how big: latency under load, throughput, start-up, memory and training time,"
	@echo "              ours against Rasa's default pipeline; reports/bench.md (an hour or more on 2 cores;"
	@echo "              BENCH_QUICK=1 for a few minutes; options: python -m scripts.bench --help)"
	@echo "make cross-validate - 5-fold NLU cross-validation (intent and response selection F1)"
	@echo "make eval - how well the NLU understands patients, ours against Rasa's default pipeline: both on the"
	@echo "            held-out set, ours also in 5-fold cross-validation; report in reports/eval.md (about an hour"
	@echo "            on 2 cores, 30 min less after make bench; EVAL_SKIP_CV=1 for the held-out set alone,"
	@echo "            EVAL_CV_ALL=1 to cross-validate the default too (3 more hours); see scripts/evaluate/run.py)"
	@echo "make eval-red-flags - red-flag recall and false-alarm rate on the evaluation sets (matcher, then whole model)"
	@echo "make review-user NAME=<name> [ROLE=admin|viewer] - create a clinic review app account (asks for the password)"
	@echo "make review-screenshots - the README's screenshots of the review app, over seeded demo data"

$(STAMP): $(LOCK)
	@if [ -z "$(PYTHON310)" ]; then \
	  echo "ERROR: Python 3.10 is required (Rasa 3.6 does not support 3.11+)."; \
	  echo "Install it with pyenv ('pyenv install 3.10.13') or your package manager (python3.10 and python3.10-venv)."; \
	  exit 1; fi
	@echo "==> Creating $(VENV) with $(PYTHON310)"
	@rm -rf $(VENV) && "$(PYTHON310)" -m venv $(VENV)
	@echo "==> Installing locked dependencies from $(LOCK) (about 2 minutes)"
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip==24.0"
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r $(LOCK)
	@$(PY) -m pip check
	@touch $@

# The widget's one browser dependency, socket.io-client, vendored from the npm
# registry at the version web/package-lock.json pins, so no page loads from a CDN.
$(VENDOR_JS): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "ERROR: npm is required to vendor the chat widget's socket.io-client (install Node.js 18+)."; exit 1; }
	@echo "==> Vendoring socket.io-client for the chat widget (npm ci)"
	@cd web && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@mkdir -p $(@D) && cp web/node_modules/socket.io-client/dist/socket.io.min.js $@

setup: $(STAMP) $(VENDOR_JS)

# Browser tests drive Debian's Chromium through Playwright (Playwright's own
# browser download does not work here).
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  echo "==> Installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null \
	    || { echo "ERROR: could not install chromium; install it with 'apt-get install chromium'."; exit 1; }; \
	fi

# The PostgreSQL tests (tests/prod/) start a throwaway cluster of Debian's PostgreSQL in a
# temporary directory (scripts/prod/postgres.py); this installs the postgresql package
# with apt when no PostgreSQL is found (through sudo unless root).
postgres: $(STAMP)
	@$(PY) -m scripts.prod.postgres install

# The replicated set-up (README "Production", scripts/prod/): Debian's redis-server and nginx,
# installed with apt when missing; nothing system-wide is started.
redis: $(STAMP)
	@$(PY) -m scripts.prod.redis install

nginx: $(STAMP)
	@$(PY) -m scripts.prod.nginx install

run-prod: model postgres redis nginx
	@$(PY) -m scripts.prod.topology run

test-prod: model browser postgres redis nginx
	@echo "==> pytest tests/topology (the replicated set-up under faults)"
	@$(PY) -m pytest tests/topology

# A model is trained only when none matches the current data, config and domain:
# scripts/model_hash.py names the model after a hash of everything that goes into it.
model: setup
	@$(PY) scripts/ensure_model.py

run: model
	@bash scripts/run.sh

validate: setup
	@echo "==> rasa data validate --fail-on-warnings"
	@$(RASA) data validate -d domain --fail-on-warnings

test: model validate browser postgres redis nginx
	@echo "==> pytest (unit, grounding, end-to-end)"
	@$(PY) -m pytest
	@$(MAKE) --no-print-directory test-stories

test-stories: model
	@echo "==> rasa test core on test stories"
	@$(RASA) test core --model "$$($(PY) scripts/ensure_model.py --path)" \
	  --stories tests/stories --fail-on-prediction-errors --out results/core --no-plot

# Not a test: a benchmark of the assistant as `make run` starts it, on ports 5105/5155
# (BENCH_RASA_PORT, BENCH_ACTIONS_PORT), ours against Rasa's default pipeline (scripts/bench/).
# A quick run (BENCH_QUICK=1) loads `make model`'s model; the full run times its own trainings.
bench: model
	@$(PY) -m scripts.bench

cross-validate: setup
	@$(RASA) test nlu --nlu data/nlu --config config.yml --cross-validation --folds 5 \
	  --out results/cross-validation
	@$(PY) scripts/report_cv.py results/cross-validation

# Held-out set, ours (config.yml) against Rasa's default pipeline (scripts/default_config.yml),
# and ours cross-validated; NLU-only models in results/eval, never in models/ (or the
# full models make bench keeps in var/bench/models/, when their inputs are unchanged).
eval: setup
	@$(PY) -m scripts.evaluate

eval-red-flags: model
	@$(PY) scripts/eval_red_flags.py
	@$(PY) scripts/eval_red_flags.py --model "$$($(PY) scripts/ensure_model.py --path)"

# The clinic review app's staff accounts (the password is asked for at a prompt).
review-user: $(STAMP)
	@test -n "$(NAME)" || { echo "usage: make review-user NAME=<user name> [ROLE=admin|viewer]"; exit 2; }
	@$(PY) -m review.manage create-user "$(NAME)" --role "$(or $(ROLE),admin)"

review-screenshots: $(STAMP) browser
	@$(PY) scripts/review_screenshots.py

# Re-resolve requirements.in into requirements.lock in a throwaway venv.
lock:
	@rm -rf .lockvenv && "$(PYTHON310)" -m venv .lockvenv
	@.lockvenv/bin/pip install --quiet "pip==24.0" && .lockvenv/bin/pip install --quiet -r requirements.in
	@{ echo "# Generated by 'make lock' from requirements.in. Do not edit by hand."; \
	   .lockvenv/bin/pip freeze --all | grep -v '^pip=='; } > $(LOCK)
	@rm -rf .lockvenv

clean:
	rm -rf $(VENV) models results var .pytest_cache web/node_modules web/public/widget/vendor
