# Two commands: `make book` builds the executed book, `make test` runs every test.
# Both create the virtual environment on first use and reuse it afterwards.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONHASHSEED ?= 0

.PHONY: book test unit nbval notebooks sync bench clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==24.3.1
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $(STAMP)

## Build the executed static site into _build/html (cached execution, warnings are errors).
book: $(STAMP)
	$(BIN)/jupyter-book build . -W --keep-going

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
