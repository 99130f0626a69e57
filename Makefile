# The two quickstart commands: `make demo` and `make test`. Each creates .venv
# and installs the package with what it needs when missing (or when setup.py
# changed), so both work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast bench clean-demo chromium

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[cpu,test]"
	touch $(STAMP)

# The main job on the embedded default: synthesise the face-sequence set,
# train the demo configuration, evaluate on held-out subjects, export.
demo: $(STAMP)
	$(PY) launch/demo.py --workdir=runs/demo

# The report tests drive headless Chromium (Debian's package; installed here when missing, as root).
chromium:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium) || \
		echo "chromium could not be installed: the browser tests will be skipped"

test: $(STAMP) chromium
	$(PY) -m pytest -n 2 --durations=15 tests

# Everything but the tests marked slow.
test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow" tests

bench: $(STAMP)
	for b in bench/*.py; do $(PY) $$b; done
