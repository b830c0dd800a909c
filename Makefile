# regen — the two commands a fresh machine needs: `make demo` and `make test`.
# Both install the system packages they need (librdkafka-dev, libjemalloc-dev, libsqlite3-dev, pkg-config, kcat) when missing;
# make test also installs prometheus (its promtool checks /metrics, its server scrapes a drain).

SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps test-deps build release test coverage chaos fuzz fuzz-diff bench soak demo broker clean

# kcat is the benchmark's baseline (make test runs the benchmark harness at a tiny size);
# libsqlite3-dev is the template processor's subject store (GRDB links the system SQLite).
deps:
	@if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists rdkafka || ! pkg-config --exists sqlite3 \
		|| ! pkg-config --exists jemalloc || ! command -v kcat >/dev/null 2>&1; then \
		echo "installing librdkafka-dev, libjemalloc-dev, libsqlite3-dev, pkg-config and kcat"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq librdkafka-dev libjemalloc-dev libsqlite3-dev pkg-config kcat; \
	fi

# Debian's prometheus package (server and promtool, 2.42) for the operations tests.
test-deps: deps
	@if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then \
		echo "installing prometheus (promtool and the server, for the metrics tests)"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
			|| { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }; \
	fi

build: deps
	$(SWIFT) build

# Builds everything first: the service tests run the regen executable as a child process.
# The logic tests run in parallel; the suites that start an embedded cluster or regen
# processes run one at a time after them (on 2 cores, a dozen clusters and their regen
# processes at once can starve a member past its session timeout and fail a test that
# demands zero duplicates); the benchmark harness's own test runs last, alone.
BROKER_SUITES := OperationsTests|PumpBrokerTests|EmbeddedClusterTests|ConsumerTests|ProducerTests|LostAssignmentTests|RebalanceTests|DroppedConsumerTests|DeadLetterOutageTests|RebalanceAndCommitTests|BrokerControlTests|ChaosTests|SlowDownstreamTests|BrokerOutageTests|CommitOutageTests|RebalanceStormTests|PoisonInputTests|ScaleOutBenchmark|DeliveryTests|TemplatePoisonTests|TemplateCrashTests|ResilienceTests|TelemetryOutageTests
test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip "BenchHarnessTests|$(BROKER_SUITES)"
	$(SWIFT) test --skip-build --no-parallel --filter "$(BROKER_SUITES)"
	$(SWIFT) test --skip-build --filter BenchHarnessTests

# Line coverage per module: every test but the benchmark harness (in the same two steps as
# make test), on an instrumented build. The regen processes the service tests start are
# instrumented too and inherit the test process's LLVM_PROFILE_FILE, so their profiles
# (one per binary, merged online) are counted with the tests' own.
COVERAGE_DIR = .build/debug/codecov
# The toolchain's own llvm tools (a distribution's llvm-profdata may not read its profiles).
LLVM_BIN = $(dir $(realpath $(shell command -v $(SWIFT))))
coverage: deps
	$(SWIFT) build --build-tests --enable-code-coverage
	rm -f $(COVERAGE_DIR)/*.profraw $(COVERAGE_DIR)/*.profdata
	$(SWIFT) test --skip-build --enable-code-coverage --skip "BenchHarnessTests|$(BROKER_SUITES)"
	cp $(COVERAGE_DIR)/default.profdata $(COVERAGE_DIR)/logic.profdata
	$(SWIFT) test --skip-build --enable-code-coverage --no-parallel --filter "$(BROKER_SUITES)"
	cp $(COVERAGE_DIR)/default.profdata $(COVERAGE_DIR)/broker.profdata
	$(LLVM_BIN)llvm-profdata merge -sparse $(COVERAGE_DIR)/logic.profdata $(COVERAGE_DIR)/broker.profdata \
		$(COVERAGE_DIR)/*.profraw -o $(COVERAGE_DIR)/all.profdata
	$(LLVM_BIN)llvm-cov report .build/debug/regenPackageTests.xctest -instr-profile=$(COVERAGE_DIR)/all.profdata \
		-ignore-filename-regex='(\.build|Tests|Fuzz)/' | awk -f scripts/coverage-by-module.awk

# The figures of RELIABILITY.md: every fault scenario at full scale (200,000 events and 20
# restarts, a 10 s broker outage, a one-minute rebalance storm, 20 rounds of poison, 20,000 events
# through the example templates with unrenderable subjects among them), then
# the scale-out benchmark on its own (nothing else may share the CPU while it measures).
# make test runs the scenarios small and skips the benchmark. About 15 minutes.
CHAOS_SUITES := ChaosTests|SlowDownstreamTests|BrokerOutageTests|CommitOutageTests|RebalanceStormTests|PoisonInputTests|TemplatePoisonTests|TemplateCrashTests
chaos: deps
	$(SWIFT) build --build-tests
	REGEN_CHAOS=full $(SWIFT) test --skip-build --filter "$(CHAOS_SUITES)"
	REGEN_CHAOS=full $(SWIFT) test --skip-build --filter ScaleOutBenchmark

# Fuzzes the change-event decoder for FUZZ_SECONDS with libFuzzer and AddressSanitizer;
# inputs that reach new code are merged into the kept corpus (Fuzz/corpus/decoder, replayed
# by make test), crashes are written to Fuzz/findings/.
FUZZ_SECONDS ?= 120
# SwiftPM 6.3 passes --sanitize fuzzer only to the link step; without -Xswiftc the code is
# not instrumented for coverage and libFuzzer mutates blindly.
FUZZ_BUILD = $(SWIFT) build -c release --sanitize fuzzer --sanitize address -Xswiftc -sanitize=fuzzer,address
fuzz: deps
	cd Fuzz && $(FUZZ_BUILD)
	rm -rf .build/fuzz-scratch && mkdir -p .build/fuzz-scratch Fuzz/findings
	Fuzz/.build/release/DecoderFuzzer -max_total_time=$(FUZZ_SECONDS) -dict=Fuzz/json.dict \
		-artifact_prefix=Fuzz/findings/ .build/fuzz-scratch Fuzz/corpus/decoder
	Fuzz/.build/release/DecoderFuzzer -merge=1 Fuzz/corpus/decoder .build/fuzz-scratch

# Differential fuzzing for FUZZ_SECONDS: ChangeEvent.decode against the Foundation-based
# reference decoder (Sources/DecoderOracle), which must agree as DecoderDifferential says.
# Starts from both kept corpora; what reaches new code is merged into
# Fuzz/corpus/differential (replayed by make test); disagreements go to Fuzz/findings/.
fuzz-diff: deps
	cd Fuzz && $(FUZZ_BUILD)
	rm -rf .build/fuzz-diff-scratch && mkdir -p .build/fuzz-diff-scratch Fuzz/findings Fuzz/corpus/differential
	Fuzz/.build/release/DifferentialFuzzer -max_total_time=$(FUZZ_SECONDS) -dict=Fuzz/json.dict \
		-artifact_prefix=Fuzz/findings/ .build/fuzz-diff-scratch Fuzz/corpus/differential Fuzz/corpus/decoder
	Fuzz/.build/release/DifferentialFuzzer -merge=1 Fuzz/corpus/differential .build/fuzz-diff-scratch

# Every benchmark scenario against its baseline, measured in the same run (BENCHMARKS.md):
# prints a table, writes bench-results.json and the chart docs/bench-scaling.svg. About 8
# minutes; release builds; nothing else should share the CPU meanwhile.
bench: deps
	$(SWIFT) build -c release --product regen
	$(SWIFT) build -c release --product regen-bench
	.build/release/regen-bench run --output bench-results.json --chart docs/bench-scaling.svg

# regen run fed SOAK_RATE events/s for SOAK_MINUTES; resident memory every minute (soak-results.json).
SOAK_MINUTES ?= 10
SOAK_RATE ?= 20000
soak: deps
	$(SWIFT) build -c release --product regen
	$(SWIFT) build -c release --product regen-bench
	.build/release/regen-bench soak --minutes $(SOAK_MINUTES) --rate $(SOAK_RATE) --output soak-results.json

# The same build command as docker/Dockerfile.
release: deps
	$(SWIFT) build -c release --product regen

# The end-to-end demo on an embedded cluster (see README): about a minute, output in demo-output/.
demo: release
	.build/release/regen demo --templates examples/templates --output demo-output

broker: deps
	$(SWIFT) run regen broker

clean:
	rm -rf .build
