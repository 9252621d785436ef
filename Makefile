# Entry points: `make install`, `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: install
	$(BIN)/kgrade grade reference/classification.ipynb --out demo-out/reference
	$(BIN)/kgrade grade reference/regression.ipynb --out demo-out/reference
	$(BIN)/kgrade grade exercises/classification.ipynb --out demo-out/exercise
	@for nb in tests/notebooks/*.ipynb; do \
		$(BIN)/kgrade grade "$$nb" --exercise classification --out demo-out/samples || exit 1; done
	@echo "Reports: demo-out/reference/classification.html (full marks),"
	@echo "demo-out/exercise/classification.html (the untouched exercise) and demo-out/samples/."

COURSE_DATA := $(wildcard ../shared/data/user_visit_duration.csv)

test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/kgrade validate $(if $(COURSE_DATA),--data $(COURSE_DATA))
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) demo-out .pytest_cache .ruff_cache .mypy_cache
