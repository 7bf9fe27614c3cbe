# Cyclorama: local development and CI entry points. `make help` lists the targets.
# Everything runs on 127.0.0.1; state (server data, logs, pids, media, admin token) lives in .var/.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

SWIFT ?= swift
SCRIPTS := scripts
# Extra flags for the test runs (swift-testing's: --filter, --skip, ...), e.g.
# make test-unit SWIFT_TEST_FLAGS='--filter RedisTests'
SWIFT_TEST_FLAGS ?=
# The test runs call the test bundle as `swift test --skip-build` would (scripts/test-bundle.sh):
# SwiftPM itself spends ~5–10 s of CPU loading the package graph before every run (four of them in
# `make test`).
SWIFT_TESTING = bash $(SCRIPTS)/test-bundle.sh
# The executables the tests start (the services and the CLI): release builds by default — what
# production runs, and the suite is CPU-bound on two cores, most of it in debug services
# (docs/running.md). TEST_BINARIES=debug runs them from the debug build instead (no release build).
TEST_BINARIES ?= release
TEST_PRODUCTS := api-gateway prompt-service runpod-dispatcher result-ingestor settings-service local-engine cyclorama
TEST_ENV = CYCLORAMA_BIN_DIR=$(CURDIR)/.build/$(TEST_BINARIES)
# Two test processes run at once in `make test` (the fault suite beside the main run): each hands
# its services, stand-ins and browsers only its share of the ports (Tests/TestSupport/ServiceProcess.swift).
MAIN_PORTS = CYCLORAMA_TEST_PORTS=0/2
FAULT_PORTS = CYCLORAMA_TEST_PORTS=1/2

.PHONY: help deps build up down status logs test test-binaries test-quick test-unit test-restart test-faults test-faults-stop test-cluster compose-check chaos fuzz runpod-stand-in python-tools test-models servers servers-stop \
        servers-status bench-broker bench-engine bench-pipeline bench-batch clean distclean

help: ## list the targets
	@echo "Cyclorama — make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-15s %s\n", $$1, $$2}'

deps: ## install the Debian packages that are missing (scripts/install-deps.sh)
	@bash $(SCRIPTS)/install-deps.sh

build: deps ## swift build (debug)
	$(SWIFT) build

up: build servers ## build, start the servers and every service, wait for /healthz, print URLs + admin token
	@bash $(SCRIPTS)/services.sh up

down: ## stop every service (SIGTERM by pid), then the servers
	@bash $(SCRIPTS)/services.sh down
	@bash $(SCRIPTS)/servers.sh stop

status: ## what is running
	@bash $(SCRIPTS)/services.sh status || true
	@bash $(SCRIPTS)/servers.sh status || true

logs: ## follow the service logs (tail -F .var/log/*.log)
	@bash $(SCRIPTS)/services.sh logs

# Suites whose name ends in RestartTests restart the shared RabbitMQ or Redis, so they run serially
# after the main run; the fault suite runs beside both on private servers of its own
# (docs/reliability.md). Every run must pass.
python-tools: ## the Python clients the tests drive Cyclorama with (RunPod's SDK) in .var/venv (scripts/python-tools.sh)
	@bash $(SCRIPTS)/python-tools.sh

# The fault suite runs on private servers of its own and mostly waits out its outages (about a
# tenth of the machine), so `make test` runs it beside the main run and the restart tests (which
# restart only the shared servers): its output goes to .var/log/test-faults.log and is printed when
# it ends. The main run starts once the fault suite's lanes have booted their servers (that takes
# the whole machine for ~30 s: timing tests failed under it). docs/running.md has the figures.
test: deps servers python-tools test-models ## the whole suite against the real servers (starts them when needed), the fault suite beside it
	$(SWIFT) build --build-tests
	@$(MAKE) --no-print-directory test-binaries
	@bash $(SCRIPTS)/beside.sh .var/log/test-faults.log 'the servers of all [0-9]+ lanes are up' \
		"$(MAKE) --no-print-directory test-faults TEST_BINARIES_READY=yes" \
		"$(MAKE) --no-print-directory test-unit test-restart TEST_BINARIES_READY=yes" \
		"$(MAKE) --no-print-directory test-faults-stop LANES='fault-tests-*'"

# TEST_BINARIES_READY=yes: the caller built them (`make test`, whose runs beside each other must not
# build while another one runs).
test-binaries: ## the executables the tests start, as TEST_BINARIES says (release: built here; debug: the debug build)
ifeq ($(TEST_BINARIES)$(TEST_BINARIES_READY),release)
	@for product in $(TEST_PRODUCTS); do echo "$(SWIFT) build -c release --product $$product"; $(SWIFT) build -c release --product $$product; done
endif

test-models: ## every segmentation model the engine knows (the tests check our convolutions on each)
	@bash $(SCRIPTS)/fetch-model.sh --all

# The inner loop: the suites that need no server and start no process. SampleQualityTests (the
# engine's quality over 36 scenes, ~100 s) is left out on purpose.
QUICK_SUITES = AMQPConfigurationTests|AsyncCleanupTests|BadInputTests|CodecTests|ConfigurationAndSQLTests|DoorbellTests|EndpointConfigurationTests|FaintPartTests|FittingTests|FollowMachineTests|GatewayInputTests|GoldenMessageTests|ImageDeliveryTests|ImageInspectionTests|IngestorConfigurationTests|IngestorSourceTests|MatteHoleTests|InputParsingTests|MasterKeyTests|ModelSettingTests|MediaURLSignerTests|OpenAPIDocumentTests|OutboundAddressTests|PeriodicWorkTests|PinnedConnectionTests|PortShareTests|PromptBuilderTests|RateLimiterTests|ResultGeometryTests|RoundTripTests|RunPodModelTests|RunPodProbeTests|ServiceConfigurationTests|SettingsAuthorityTests|SettingsCacheTests|StripedFilterTests|TimeoutTests|UpscaleTests|ValidationTests|WebhookTokenTests

test-quick: ## the suites that need no server and start no process (seconds, for the inner loop)
	$(SWIFT) build --build-tests
	$(SWIFT_TESTING) --filter '\.($(QUICK_SUITES))/'

test-unit: test-binaries
	@echo "==> the tests (everything except *RestartTests and the fault suite)"
	$(TEST_ENV) $(MAIN_PORTS) $(SWIFT_TESTING) --skip RestartTests --skip FaultTests --skip ClusterTests $(SWIFT_TEST_FLAGS)

test-restart: test-binaries
	@echo "==> the tests named *RestartTests, serially"
	@suites="$$($(SWIFT_TESTING) --list-tests)"; \
	if grep -q 'RestartTests' <<<"$$suites"; then \
		echo "$(SWIFT_TESTING) --filter RestartTests --no-parallel $(SWIFT_TEST_FLAGS)"; \
		$(TEST_ENV) $(MAIN_PORTS) $(SWIFT_TESTING) --filter RestartTests --no-parallel $(SWIFT_TEST_FLAGS); \
	else \
		echo "no *RestartTests suites: nothing to run"; \
	fi

# A three-node RabbitMQ cluster on this machine (scripts/cluster.sh), the system on it, a node stopped
# in the middle of a batch; the cluster is stopped again afterwards, whatever happened.
test-cluster: deps servers test-binaries ## the system on a three-node RabbitMQ cluster, nodes stopped mid-batch (docs/messaging.md)
	$(SWIFT) build --build-tests
	@bash $(SCRIPTS)/cluster.sh start
	@echo "==> the tests named ClusterTests, serially"
	@rc=0; $(TEST_ENV) $(SWIFT_TESTING) --filter ClusterTests --no-parallel $(SWIFT_TEST_FLAGS) || rc=$$?; \
		bash $(SCRIPTS)/cluster.sh stop >/dev/null 2>&1 || true; exit $$rc

# Debian's docker-compose reads the file as Docker would (no daemon needed): compose/ stays valid.
compose-check: ## check compose/docker-compose.yml with `docker-compose config` (installs Debian's docker-compose when missing)
	@bash $(SCRIPTS)/install-deps.sh compose
	docker-compose -f compose/docker-compose.yml config -q
	@echo "compose/docker-compose.yml is valid"

test-faults: test-binaries ## one round of every fault against a running system, I1-I7 checked (docs/reliability.md; needs a build with tests)
	@echo "==> the fault suite: one round of every fault"
	$(TEST_ENV) $(FAULT_PORTS) $(SWIFT_TESTING) --filter FaultTests $(SWIFT_TEST_FLAGS)

# Each lane writes the ports it chose to its folder's servers.env; scripts/leftover-servers.sh says
# what of it is trusted (the lanes run it too before they start). LANES: which lanes (a pattern of .var/faults/; `make test` stops only its own after an interrupt).
LANES ?= *
test-faults-stop: ## stop the private servers of fault suites and chaos runs (each .var/faults/*/servers.env; a running one's too)
	@for folder in .var/faults/$(LANES)/; do \
		[[ -e "$$folder/servers.env" ]] || continue; \
		bash $(SCRIPTS)/leftover-servers.sh "$$folder" || echo "$$folder: not stopped (see above)"; \
	done

# ROUNDS rounds of every fault (ONLY=name,name for some); prints the table of docs/reliability.md.
ROUNDS ?= 5
ONLY ?=
# The binaries are copied first, so a build during a long run cannot change them under it.
chaos: deps test-binaries ## ROUNDS (5) rounds of every fault; prints the table of docs/reliability.md (ONLY=name,... for some)
	$(SWIFT) build
	rm -rf .var/chaos-bin && mkdir -p .var/chaos-bin
	cp .build/$(TEST_BINARIES)/{api-gateway,prompt-service,runpod-dispatcher,result-ingestor,settings-service,local-engine} .var/chaos-bin/
	cp .build/debug/chaos .var/chaos-bin/
	CYCLORAMA_BIN_DIR=$(CURDIR)/.var/chaos-bin .var/chaos-bin/chaos --rounds $(ROUNDS) $(if $(ONLY),--only '$(ONLY)') --out .var/chaos-table.md

# The tests' RunPod stand-in on loopback, to try the RunPod backend by hand (README).
RUNPOD_STAND_IN_PORT ?= 8095
runpod-stand-in: deps ## a RunPod stand-in on 127.0.0.1:$(RUNPOD_STAND_IN_PORT) (FLUX.1 Kontext protocol, no account needed); prints its endpoint and key
	$(SWIFT) build --product runpod-stand-in
	RUNPOD_STAND_IN_PORT=$(RUNPOD_STAND_IN_PORT) .build/debug/runpod-stand-in

# FUZZ_INPUTS mutated bodies for the gateway's routes, a tenth as many messages for the queues.
FUZZ_INPUTS ?= 100000
FUZZ_MESSAGES ?=
FUZZ_SEED ?=
# Bodies in flight at once.
FUZZ_LANES ?= 4
# Then schemathesis against the OpenAPI document: SCHEMATHESIS_EXAMPLES cases per operation (make
# test runs 20), SCHEMATHESIS_SEED (fixed unless given).
SCHEMATHESIS_EXAMPLES ?= 500
SCHEMATHESIS_SEED ?=
fuzz: deps servers python-tools ## FUZZ_INPUTS (100000) hostile HTTP bodies and queue messages against a whole system, then schemathesis (SCHEMATHESIS_EXAMPLES, 500); prints what they got (docs/security.md, docs/api.md)
	$(SWIFT) build --build-tests
	FUZZ_INPUTS=$(FUZZ_INPUTS) $(if $(FUZZ_MESSAGES),FUZZ_MESSAGES=$(FUZZ_MESSAGES)) $(if $(FUZZ_SEED),FUZZ_SEED=$(FUZZ_SEED)) FUZZ_LANES=$(FUZZ_LANES) .build/debug/fuzz
	SCHEMATHESIS_EXAMPLES=$(SCHEMATHESIS_EXAMPLES) $(if $(SCHEMATHESIS_SEED),SCHEMATHESIS_SEED=$(SCHEMATHESIS_SEED)) $(SWIFT_TESTING) --filter 'SchemathesisTests'

servers: ## start RabbitMQ, Redis, PostgreSQL (idempotent; waits until ready)
	@bash $(SCRIPTS)/servers.sh start

servers-stop: ## stop RabbitMQ, Redis, PostgreSQL
	@bash $(SCRIPTS)/servers.sh stop

servers-status: ## one line per server
	@bash $(SCRIPTS)/servers.sh status

bench-broker: deps servers ## publish/consume benchmark against the local RabbitMQ (release build)
	$(SWIFT) run -c release broker-bench

bench-engine: ## local engine: stage timings, framing presets, 2x upscale, peak RSS at 4000x4000, quality on the 36 sample scenes, the fidelity guard (release; LOCAL_ENGINE_MODEL picks the model, LOCAL_ENGINE_SIDES its input sides)
	@bash $(SCRIPTS)/fetch-model.sh
	$(SWIFT) build -c release --product engine-bench
	.build/release/engine-bench $(BENCH_ARGS)

bench-pipeline: deps servers ## orchestration overhead per job and sustained jobs/s through all services (release build)
	$(SWIFT) build -c release
	CYCLORAMA_BIN_DIR=$(CURDIR)/.build/release .build/release/pipeline-bench $(BENCH_ARGS)

bench-batch: deps servers ## a batch of 200 at concurrency 3/5/10 (polling and webhooks): makespan vs ceil(N/c) x latency (release build)
	$(SWIFT) build -c release
	CYCLORAMA_BIN_DIR=$(CURDIR)/.build/release .build/release/batch-bench $(BENCH_ARGS)

clean: ## remove build products (keeps .var: data, logs, admin token)
	$(SWIFT) package clean

distclean: down ## stop everything, then delete .build and .var (all local data and the admin token)
	rm -rf .build .var
