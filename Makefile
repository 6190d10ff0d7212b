# The two commands: `make run` (the portal, seeded) and `make test` (the whole suite).
VENV ?= .venv
STAMP := $(VENV)/.installed

.PHONY: run test setup lint bench clean

run: $(STAMP)
	@scripts/run.sh

test: $(STAMP)
	@scripts/test.sh

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml scripts/setup.sh
	@scripts/setup.sh
	@touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var/test test-artifacts
