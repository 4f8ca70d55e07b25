# The two commands: `make demo` (the end-to-end demo on the embedded AWS) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The lock's exact command (its header repeats it); pip-tools runs from its own virtualenv.
PIP_COMPILE := pip-compile --allow-unsafe --generate-hashes --no-emit-find-links \
	--no-emit-index-url --output-file=requirements.lock --strip-extras requirements-dev.txt

.PHONY: demo test lint bench docs lock clean

# Every dependency, transitive ones included, at the lock's version and hash.
$(STAMP): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m sandbox $(ARGS)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy handler components sandbox hub ami_upgrade_cli
	$(PY) -m pytest -n auto --dist worksteal $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) -m benchmarks

# The files generated from the settings schema and from real demo runs.
docs: $(STAMP)
	$(PY) -m components.docs
	$(PY) -m sandbox.samples

# After changing requirements*.txt: resolve and hash every dependency again.
lock:
	test -x .venv-lock/bin/pip-compile || ($(PYTHON) -m venv .venv-lock \
		&& .venv-lock/bin/pip install --quiet pip-tools==7.6.2)
	.venv-lock/bin/$(PIP_COMPILE)

clean:
	rm -rf $(VENV) .venv-lock .pytest_cache .ruff_cache reports build
