# Shoal's build. `make` alone lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

GO        ?= go
BIN       ?= bin
PKGS      := ./...
FUZZTIME  ?= 30000x
SCHEDULES ?= 100
HOLLOW_NODES ?= 1000
HOLLOW_PODS ?= 10000
HOLLOW_GOGC ?= 400
HOLLOW_MEMLIMIT ?= 16GiB
GOSSIP_MEMBERS ?= 20
FAN_WATCHERS ?= 100
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: help
help: ## List the targets with what they do.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build bin/shoal.
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN)/shoal ./cmd/shoal

.PHONY: test
test: lint tidy ## The whole suite: lint, go.mod tidy, unit and in-process cluster tests with -race, the bounded hollow-node run (without -race), the client-go module's tests, the Vagrant checks, bounded fuzz runs.
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(GO) test -count=1 -run '^TestHollow$$' -timeout 15m ./integration/hollow
	cd integration/clientgo && $(GO) test -count=1 ./...
	$(MAKE) vagrant-check
	$(MAKE) fuzz

.PHONY: testrace
testrace: ## Unit and in-process tests with the race detector, no lint.
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

.PHONY: fuzz
fuzz: ## Fuzz manifest decoding, the DNS server's request path, the pki parsers (join tokens, API tokens, CSRs) and the join and certificate-renewal request bodies, FUZZTIME each (default 30000x: an execution count, not a duration, so that Go 1.26's fuzz coordinator cannot fail at the deadline, golang/go#75804).
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeManifests$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x ./api
	$(GO) test -run '^$$' -fuzz '^FuzzServeDNS$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x ./agent/dns
	$(GO) test -run '^$$' -fuzz '^FuzzRequestAttributes$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x ./agent/apiserver
	$(GO) test -run '^$$' -fuzz '^FuzzParseJoinToken$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x ./consensus/pki
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyToken$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x ./consensus/pki
	$(GO) test -run '^$$' -fuzz '^FuzzParseCSR$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x ./consensus/pki
	$(GO) test -run '^$$' -fuzz '^FuzzJoinBody$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x ./agent/identity
	$(GO) test -run '^$$' -fuzz '^FuzzCertificateBody$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x ./agent/identity

.PHONY: integ
integ: ## Integration tests only (root: namespaces, containerd, CNI, nftables), ending with the table of the fault scenarios' figures; make test runs them too.
	@mkdir -p $(BIN); rm -f $(BIN)/figures.txt
	@status=0; SHOAL_FIGURES_OUT=$(abspath $(BIN))/figures.txt $(GO) test -count=1 -timeout 30m ./integration/... ./dataplane/... || status=$$?; \
	echo "==> figures of the fault scenarios (issue 12; a test fails where a figure passes its bound)"; \
	if [[ -s $(BIN)/figures.txt ]]; then awk '{ printf "  %-40s %10s   target %s\n", $$2, $$3, $$4 }' $(BIN)/figures.txt; else echo "  none measured (not root, or the scenarios were skipped)"; fi; \
	exit $$status

.PHONY: bench
bench: ## Benchmarks: Go benchmarks (store, decoding, Raft proposals and log-store appends (bytes written per byte), scheduler, nftables syncs, DNS, API token checks and TLS handshakes), DNS vs dnsmasq, writes through the HTTP API secure vs --insecure vs etcd, a token join's start to Ready, RSS per 10,000 1 KiB objects vs etcd (integration/bench/memory.sh -objects 100000 for the issue's figure), gossip convergence and watch fan-out (bench-fanout) (installs etcd-server, dnsperf, dnsmasq-base).
	$(GO) test -run '^$$' -bench . -benchmem ./consensus/store ./api
	$(GO) test -run '^$$' -bench ProposeParallel -benchtime 20000x ./consensus
	$(GO) test -run '^$$' -bench LogStoreAppend -benchtime 300x ./consensus
	$(GO) test -run '^$$' -bench 'Schedule' -benchtime 20x ./placement
	$(GO) test -run '^$$' -bench ReconcileOnePodChange -benchmem ./agent/controllers
	$(GO) test -run '^$$' -bench ApplyToBound -benchtime 3x ./agent/controllers
	$(GO) test -run '^$$' -bench 'FullSync|Incremental' -benchtime 20x ./dataplane/lb
	$(GO) test -run '^$$' -bench . -benchmem ./agent/dns
	$(GO) test -run '^$$' -bench 'Verif|Handshake' -benchmem ./consensus/pki
	bash integration/bench/dns.sh
	bash integration/bench/writes.sh
	bash integration/bench/memory.sh
	$(MAKE) bench-fanout

.PHONY: bench-fanout
bench-fanout: build ## Gossip at scale (GOSSIP_MEMBERS, default 20, members of consensus/gossip in one process: convergence, bytes per member, a crash seen dead) and watch fan-out (FAN_WATCHERS, default 100, node-filtered pod watches on three agents: delay from a write's answer to the watcher); about a minute each. Full sizes: GOSSIP_MEMBERS=100,250,500,1000 FAN_WATCHERS=100,1000.
	$(GO) run ./integration/bench/gossip -n $(GOSSIP_MEMBERS) -window 5s -converge-timeout 2m -dead-timeout 1m
	$(GO) run ./integration/bench/watchfan -shoal $(BIN)/shoal -watchers $(FAN_WATCHERS) -duration 10s

.PHONY: chaos
chaos: ## Linearizability under faults: SCHEDULES (default 100) random fault episodes on 5-agent clusters, porcupine check, table of gaps (root, ~15 min).
	SHOAL_CHAOS_SCHEDULES=$(SCHEDULES) $(GO) test -count=1 -run '^TestChaos$$' -v -timeout 90m ./integration/chaos

.PHONY: scale
scale: ## Scale figures on hollow nodes (integration/hollow): HOLLOW_NODES (default 1000) simulated hosts in one process against three real voters; apply HOLLOW_PODS (default 10000) pods, gossip convergence and death detection, 10% of the nodes crashed at once. The process collects at GOGC=HOLLOW_GOGC (default 400) under GOMEMLIMIT=HOLLOW_MEMLIMIT (default 16GiB: 1,000 nodes then hold about 16 GB). Not root; several minutes.
	GOGC=$(HOLLOW_GOGC) GOMEMLIMIT=$(HOLLOW_MEMLIMIT) SHOAL_HOLLOW_NODES=$(HOLLOW_NODES) SHOAL_HOLLOW_PODS=$(HOLLOW_PODS) $(GO) test -count=1 -run '^TestHollow$$' -v -timeout 60m ./integration/hollow

.PHONY: figures
figures: ## Failover figures (20 trials of a 5-agent cluster, production timings, ~8 min) and pod start latency vs ctr run (root).
	SHOAL_FIGURES=1 $(GO) test -count=1 -run TestFailoverFigures -v -timeout 30m ./agent
	SHOAL_FIGURES=1 $(GO) test -count=1 -run TestNodeLoopStartLatencyFigure -v -timeout 10m ./integration

.PHONY: lint
lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^integration/bench/etcdload/') ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	cd integration/clientgo && $(GO) vet ./...

.PHONY: tidy
tidy: ## Fail if go.mod or go.sum would change under `go mod tidy`.
	$(GO) mod tidy -diff
	cd integration/clientgo && $(GO) mod tidy -diff

.PHONY: demo
demo: ## Three hosts on this machine (network namespaces on a switch, a containerd each, root): deploy the example app, kill the leader, watch the cluster carry on. Runs until make demo-stop.
	bash integration/demo.sh

.PHONY: demo-stop
demo-stop: ## Stop the three-host demo and remove everything it made (also a crashed run's leftovers).
	bash integration/demo.sh stop

.PHONY: demo-dev
demo-dev: build ## One host, -dev (lighter, for a laptop): a one-node cluster with real containers and the example app.
	bash integration/demo-dev.sh

.PHONY: demo-dev-stop
demo-dev-stop: ## Stop the agent that `make demo-dev` started.
	bash integration/demo-dev.sh stop

.PHONY: vagrant-check
vagrant-check: build ## Check the Vagrant environment without booting VMs: vagrant validate, systemd-analyze verify on the unit provision.sh writes, shellcheck on every script (a missing tool is skipped with a message).
	bash integration/vagrant/check.sh

.PHONY: clean
clean: ## Remove build output.
	rm -rf $(BIN)
