.DEFAULT_GOAL := help
GO ?= go

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build ./tandem
	$(GO) build -o tandem ./cmd/tandem

install: ## install tandem into $(go env GOPATH)/bin
	$(GO) install ./cmd/tandem

test: ## run every test with the race detector (what CI runs)
	$(GO) test -race -p 1 -timeout 60m ./...

vet: ## go vet and gofmt check
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

FUZZTIME ?= 60s

fuzz: ## run every fuzzer in the tree (schedules, job files, API requests) for FUZZTIME (60s) each
	@for f in $$(grep -rl --include='*_test.go' '^func Fuzz' internal); do \
	  d=./$$(dirname $$f); \
	  for n in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | cut -d' ' -f2); do \
	    echo "== $$n $$d"; $(GO) test -run='^$$' -fuzz="^$$n\$$" -fuzztime=$(FUZZTIME) $$d || exit 1; \
	  done; \
	done

golden: ## rewrite the golden files of the CLI's --json shapes and status table (review the diff)
	$(GO) test ./cmd/tandem -run TestJSONShapesAreStable -count=1 -update

lint: ## staticcheck (pinned as a tool in go.mod), go vet and gofmt
	$(GO) tool staticcheck ./...
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

bench: ## run every benchmark (lateness, throughput, failover, scale, deliver, outputs; each prints its figures)
	$(GO) run ./bench/lateness
	$(GO) run ./bench/throughput
	$(GO) run ./bench/failover
	$(GO) run ./bench/scale
	$(GO) run ./bench/deliver
	$(GO) run ./bench/outputs

soak: ## the fault-injection soak, 500 faults per engine (about 25 minutes each), then with scheduler slots = 3
	$(GO) test -timeout 120m -run 'TestSoak$$' -v ./internal/chaos/ -soak.faults=500 -soak.norace
	$(GO) test -timeout 120m -run 'TestSoakSlots$$' -v ./internal/chaos/ -soak.faults=500 -soak.norace

screenshots: ## write a PNG of every console page of a small live cluster into docs/console/ (needs chromium)
	TANDEM_SCREENSHOTS=$(CURDIR)/docs/console $(GO) test -count=1 -run '^TestConsoleScreenshots$$' ./cmd/tandem

ci: ## what CI runs
	bash .ci/run

.PHONY: help build install test vet lint fuzz bench soak screenshots ci
