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

fuzz: ## run each schedule fuzzer for 60s
	$(GO) test -run='^$$' -fuzz=FuzzParseExpr -fuzztime=60s ./internal/schedule/
	$(GO) test -run='^$$' -fuzz=FuzzNext -fuzztime=60s ./internal/schedule/

bench: ## run the lateness and throughput benchmarks (print their figures)
	$(GO) run ./bench/lateness
	$(GO) run ./bench/throughput

ci: ## what CI runs
	bash .ci/run

.PHONY: help build install test vet fuzz bench ci
