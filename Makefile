# The two commands of the README:
#   make demo   run the whole pipeline on the bundled synthetic scan -> demo-output/
#   make test   run the test suite
# Both create or reuse the virtual environment (.venv) first.
VENV ?= .venv
PY := $(VENV)/bin/python
export HRPQCT_VENV := $(VENV)

.PHONY: demo test venv bench clean
venv:
	@scripts/setup.sh

demo: venv
	$(PY) -m hrpqct demo --out demo-output

test: venv
	@scripts/setup-browser.sh || true
	$(PY) -m pytest -q

bench: venv
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf demo-output .pytest_cache
