# `make run` (the app on the bundled model: the run-time packages only) and `make test` (everything,
# the whole suite). Each sets up the virtual environment it needs the first time, from the lock files.
# pyproject.toml is the one list of packages; `make lock` regenerates the lock files from it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
LOCK := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --custom-compile-command "make lock"

.PHONY: run test lint setup setup-dev lock benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Run time: Streamlit, ONNX Runtime, NumPy, Pillow, OpenCV, plotly, fpdf2, platformdirs (no TensorFlow).
$(RUN_STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(RUN_STAMP)

# Everything: the run-time set, training/export (TensorFlow, Keras, scikit-learn, ...) and the tests.
$(DEV_STAMP): requirements-dev.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(DEV_STAMP) $(RUN_STAMP)

setup: $(RUN_STAMP)

setup-dev: $(DEV_STAMP)

run: $(RUN_STAMP)
	$(BIN)/streamlit run app.py

test: $(DEV_STAMP)
	$(BIN)/python -m pytest

lint: $(DEV_STAMP)
	$(BIN)/python -m ruff check .

# Regenerate both lock files from pyproject.toml (exact versions, every platform, Python >= 3.11).
# Versions already in a lock file are kept unless pyproject.toml rules them out (uv --upgrade: newest).
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet "uv>=0.5"
	$(LOCK) --extra train --extra test --extra scale -o requirements-dev.txt
	$(LOCK) --constraint requirements-dev.txt -o requirements.txt

benchmark: $(DEV_STAMP)
	$(BIN)/python benchmarks/speed.py

clean:
	rm -rf $(VENV) .cache .pytest_cache
