# regen — the two commands a fresh machine needs: `make demo` and `make test`.
# Both install the system packages they need (librdkafka-dev, pkg-config) when missing.

SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build release test chaos fuzz demo broker clean

deps:
	@if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists rdkafka; then \
		echo "installing librdkafka-dev and pkg-config"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq librdkafka-dev pkg-config; \
	fi

build: deps
	$(SWIFT) build

# Builds everything first: the service tests run the regen executable as a child process.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# The figures of RELIABILITY.md: every fault scenario at full scale (200,000 events and 20
# restarts, a 10 s broker outage, a one-minute rebalance storm, 20 rounds of poison, 20,000 events
# through the example templates with unrenderable subjects among them), then
# the scale-out benchmark on its own (nothing else may share the CPU while it measures).
# make test runs the scenarios small and skips the benchmark. About 15 minutes.
CHAOS_SUITES := ChaosTests|SlowDownstreamTests|BrokerOutageTests|CommitOutageTests|RebalanceStormTests|PoisonInputTests|TemplatePoisonTests
chaos: deps
	$(SWIFT) build --build-tests
	REGEN_CHAOS=full $(SWIFT) test --skip-build --filter "$(CHAOS_SUITES)"
	REGEN_CHAOS=full $(SWIFT) test --skip-build --filter ScaleOutBenchmark

# Fuzzes the change-event decoder for FUZZ_SECONDS with libFuzzer and AddressSanitizer;
# inputs that reach new code are merged into the kept corpus (Fuzz/corpus/decoder, replayed
# by make test), crashes are written to Fuzz/findings/.
FUZZ_SECONDS ?= 120
fuzz: deps
	cd Fuzz && $(SWIFT) build -c release --sanitize fuzzer --sanitize address
	rm -rf .build/fuzz-scratch && mkdir -p .build/fuzz-scratch Fuzz/findings
	Fuzz/.build/release/DecoderFuzzer -max_total_time=$(FUZZ_SECONDS) -dict=Fuzz/json.dict \
		-artifact_prefix=Fuzz/findings/ .build/fuzz-scratch Fuzz/corpus/decoder
	Fuzz/.build/release/DecoderFuzzer -merge=1 Fuzz/corpus/decoder .build/fuzz-scratch

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
