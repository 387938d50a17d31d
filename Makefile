.DEFAULT_GOAL := help
GO ?= go

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build ./tandem
	$(GO) build -o tandem ./cmd/tandem

install: ## install tandem into $(go env GOPATH)/bin
	$(GO) install ./cmd/tandem

test: ## run every test with the race detector (what CI runs)
	$(GO) test -race -timeout 30m ./...

vet: ## go vet and gofmt check
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

fuzz: ## run each fuzzer (schedules, job files, API requests) for 60s
	$(GO) test -run='^$$' -fuzz=FuzzParseExpr -fuzztime=60s ./internal/schedule/
	$(GO) test -run='^$$' -fuzz=FuzzNext -fuzztime=60s ./internal/schedule/
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=60s ./internal/job/
	$(GO) test -run='^$$' -fuzz=FuzzRunListQuery -fuzztime=60s ./internal/api/
	$(GO) test -run='^$$' -fuzz=FuzzSwitchRequest -fuzztime=60s ./internal/api/

bench: ## run every benchmark (lateness, throughput, failover, scale; each prints its figures)
	$(GO) run ./bench/lateness
	$(GO) run ./bench/throughput
	$(GO) run ./bench/failover
	$(GO) run ./bench/scale

soak: ## the fault-injection soak, 500 faults per engine (about 25 minutes each)
	$(GO) test -timeout 120m -run 'TestSoak' -v ./internal/chaos/ -soak.faults=500 -soak.norace

ci: ## what CI runs
	bash .ci/run

.PHONY: help build install test vet fuzz bench soak ci
