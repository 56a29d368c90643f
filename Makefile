# Two commands: `make book` builds the executed book, `make test` runs every test.
# Both create the virtual environment on first use and reuse it afterwards.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONHASHSEED ?= 0

.PHONY: book test unit nbval notebooks sync bench site-test clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==24.3.1
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $(STAMP)

## Build the executed static site into _build/html (cached execution, warnings are errors).
## Its wall time, and whether the execution cache was cold, goes to _build/build_time.json.
book: $(STAMP)
	@cold=$$([ -d .cache/jupyter-cache ] && echo 0 || echo 1); start=$$(date +%s); \
	$(BIN)/jupyter-book build . -W --keep-going; rc=$$?; \
	$(BIN)/python -m bnn_saliency.bench --record-build $$(( $$(date +%s) - start )) \
	  --cold $$cold --exit-code $$rc || true; exit $$rc

## Open every page of the built site in headless Chromium (needs `make book` first and the
## Debian packages chromium + chromium-driver); screenshots go to _build/screenshots/.
site-test: $(STAMP)
	@test -d _build/html || { echo "_build/html is missing: run 'make book' first"; exit 1; }
	BNN_SALIENCY_SITE_TEST=1 $(BIN)/pytest tests/test_site.py -q -p no:cacheprovider

## Benchmark (SmoothGrad vs tf-keras-vis, lower bound, CAM/IG, training, book builds) into
## book/results/performance/bench.json, then re-execute the performance appendix that renders it.
## Run it on an otherwise idle machine; it takes 5-10 minutes on 2 cores.
bench: $(STAMP)
	$(BIN)/python -m bnn_saliency.bench $(BENCH_ARGS)
	$(MAKE) notebooks CHAPTERS="appendix_performance.md"

## Unit tests, then every chapter notebook re-executed and compared with its stored outputs.
test: $(STAMP)
	$(BIN)/pytest tests -q
	$(BIN)/pytest --nbval book/ --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider -q \
	  || { rc=$$?; [ $$rc -eq 5 ] && echo "no notebooks collected" || exit $$rc; }

unit: $(STAMP)
	$(BIN)/pytest tests -q

## Re-sync each chapter's .ipynb from its .md, execute it in place, strip figures (not committed).
## CHAPTERS="01_gradient.md" limits it to some chapters.
notebooks: $(STAMP)
	cd book && for md in $(or $(CHAPTERS),$$(grep -l '^jupytext:' *.md)); do \
	  nb="$${md%.md}.ipynb"; \
	  ../$(BIN)/jupytext --to ipynb --update "$$md" -o "$$nb" && \
	  ../$(BIN)/jupyter execute --inplace --timeout=900 "$$nb" && \
	  ../$(BIN)/python -m bnn_saliency.notebooks strip "$$nb" || exit 1; done

clean:
	rm -rf _build .cache/jupyter-cache
