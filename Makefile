# o2go — the two set-up commands of the README are `make demo` and `make test`.
# Both install what they need (scripts/deps.sh: apt-get; go modules: go build).

GO        ?= go
BIN       := bin/o2go
PKGS      := ./...
# The whole suite must stay well under CI's 90 minutes.
TEST_TIMEOUT ?= 60m
FUZZTIME  ?= 20s
# The race detector over the packages whose goroutines share state (lock
# caches, the DLM, the journal, links, the agent's control socket); the
# whole suite under -race would not fit CI's time.
RACE_PKGS := ./internal/fs/lockglue ./internal/dlm ./internal/fs/metacache ./internal/fs/journal ./internal/transport ./internal/cluster/net

.PHONY: all build deps test test-short crash-long demo bench fuzz vet lint clean

all: build

deps:
	@scripts/deps.sh

build:
	$(GO) build -o $(BIN) ./cmd/o2go

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

# The whole test suite: unit, golden (real ocfs2-tools), kernel VM, fuzz
# corpora, simulator runs (with costly invariants on), multi-process clusters.
test: deps build vet
	$(GO) test -timeout $(TEST_TIMEOUT) $(PKGS)
	$(GO) test -tags invariants -timeout $(TEST_TIMEOUT) ./internal/base/...
	$(GO) test -race -timeout $(TEST_TIMEOUT) $(RACE_PKGS)
	$(GO) test -race -timeout $(TEST_TIMEOUT) -run 'Control|Hub|Subscribe' ./internal/node

# Quick loop for development: no VM, no long runs.
test-short: build
	$(GO) test -short $(PKGS)

# Crash consistency, long form: 200 SIGKILLs of the FUSE server (make test
# runs 10). O2GO_CRASH_KEEP=DIR keeps the crashed image of a failing run.
crash-long: deps build
	O2GO_CRASH_RUNS=200 $(GO) test -count=1 -timeout 90m -run '^TestCrashConsistency$$' -v ./internal/fusefs/

# The main job: a real cluster on this machine, showing what o2go does.
demo: deps build
	@scripts/demo.sh

# Benchmarks: every result is a ratio against a baseline measured in the
# same run; results and commands are recorded in BENCHMARKS.md.
bench: deps build
	@scripts/bench.sh

# Run every fuzz target for FUZZTIME each.
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin
