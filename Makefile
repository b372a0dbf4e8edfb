# make test : create .venv, install supernet with its extras, run the test suite
# make run  : the whole job (train -> search -> export -> retrain) on digits, offline
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test test-fast run lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch and torchvision first, pinned together (torchvision must match torch's build)
	$(BIN)/pip install -q "torch==2.14.1" "torchvision==0.29.1" || $(BIN)/pip install -q "torch<2.15" "torchvision<0.30"
	$(BIN)/pip install -q -e ".[onnx,launchers,dev]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

run: $(STAMP)
	$(BIN)/supernet

lint: $(STAMP)
	$(BIN)/ruff check supernet tests
	$(BIN)/ruff format --check supernet tests

clean:
	rm -rf $(VENV) .pytest_cache
