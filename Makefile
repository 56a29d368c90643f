# Two commands: `make book` builds the executed book, `make test` runs every test.
# Both create the virtual environment on first use and reuse it afterwards.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONHASHSEED ?= 0
PARALLEL := TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1

.PHONY: book test unit nbval notebooks results sync bench site-test clean

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
## Both stages run two pytest-xdist workers with one TensorFlow thread each, which keeps both
## cores busy through the single-threaded parts (on a 2-core AMD EPYC: unit tests 389 s instead
## of 671 s, nbval 1042 s instead of 1613 s); `--dist loadfile` keeps each notebook's cells in
## one kernel. The stored outputs hold under one thread and under two.
## The nbval stage fails if it collects no notebook. It fills the memo (.cache/memo), so a
## `make book` after it re-executes the chapters from the memo in a fraction of the time.
test: $(STAMP)
	$(PARALLEL) $(BIN)/pytest tests -q -n 2 --durations=15
	@echo "== nbval: re-executing every notebook in book/ and comparing its stored outputs"
	$(PARALLEL) $(BIN)/pytest --nbval book/ --nbval-sanitize-with tests/nbval_sanitize.cfg \
	  -p no:cacheprovider -q -n 2 --dist loadfile --durations=15

unit: $(STAMP)
	$(BIN)/pytest tests -q

## Re-sync each chapter's .ipynb from its .md, execute it in place, strip figures (not committed),
## and rewrite the chapter's book/results/*.json (BNN_SALIENCY_UPDATE_RESULTS=1; without it a
## chapter only checks its numbers against that file). Everything is recomputed, not read from
## the memo (BNN_SALIENCY_RECOMPUTE=1), so the stored cell timings are compute times.
## CHAPTERS="01_gradient.md" limits it.
notebooks: $(STAMP)
	export BNN_SALIENCY_UPDATE_RESULTS=1 BNN_SALIENCY_RECOMPUTE=1; cd book && for md in $(or $(CHAPTERS),$$(grep -l '^jupytext:' *.md)); do \
	  nb="$${md%.md}.ipynb"; \
	  ../$(BIN)/jupytext --to ipynb --update "$$md" -o "$$nb" && \
	  ../$(BIN)/jupyter execute --inplace --timeout=900 "$$nb" && \
	  ../$(BIN)/python -m bnn_saliency.notebooks strip "$$nb" || exit 1; done

## The experiment step: recompute the committed per-image records (book/records/) of every
## chapter that reads them, by re-executing those chapters as `make notebooks` does.
results: $(STAMP)
	BNN_SALIENCY_UPDATE_RECORDS=1 $(MAKE) notebooks CHAPTERS="$$(cd book && grep -l '\.recorded(\|records\.per_image' *.md | tr '\n' ' ')"

clean:
	rm -rf _build .cache/jupyter-cache
