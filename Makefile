# rfs — build embedded Linux images with a squashfs root and an overlay upper.
#   make demo   build the default image (qemu-arm64) and boot it in QEMU
#   make test   the whole test suite (unit, kernel mounts as root, QEMU boots)

GO      ?= go
BOARD   ?= qemu-arm64
IMAGE   ?= out/$(BOARD).img

.PHONY: all build deps demo test e2e unit bench soak fuzz lint cross clean

all: build

build:
	$(GO) build -o rfs ./cmd/rfs

deps:
	@./scripts/deps.sh

demo: deps build
	./rfs build --board $(BOARD) -o $(IMAGE)
	./rfs run $(IMAGE)

# The whole suite, after lint. Tests that need root (loop mounts) or QEMU
# skip with a message when those are missing; CI runs them all.
# Then every fuzz target for FUZZTIME each (the readers of untrusted bytes).
test: deps lint
	$(GO) test -timeout 35m ./...
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

unit:
	$(GO) test -short ./...

e2e: deps
	$(GO) test -timeout 35m -v -run . ./e2e/

# Power-loss soak: QEMU killed at random moments during factory reset and
# first-boot growth and during field updates, SOAK trials each instead of
# the suite's 20 (seed: RFS_E2E_SEED).
SOAK ?= 200
soak: deps
	RFS_E2E_SOAK=$(SOAK) $(GO) test -timeout 0 -v -run 'TestPowerLoss|TestUpdatePowerCut' ./e2e/

# Every fuzz target for FUZZTIME each (default 10s; e.g. make fuzz FUZZTIME=5m).
FUZZTIME ?= 10s
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

bench: deps build
	./bench/run.sh

# gofmt, go vet, go.mod and go.sum tidy, and the other hosts' builds.
lint: cross
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) mod tidy -diff

# rfs for macOS and Windows: the CLI cross-compiled, and the host packages
# (all but the on-device init and agent and the Linux-only test suites) vetted for each.
CROSS      ?= darwin/amd64 darwin/arm64 windows/amd64
CROSS_PKGS  = $$($(GO) list ./... | grep -v -e '/overlay$$' -e '/cmd/rfs-init$$' -e '/agent/' -e '/cmd/rfs-agent$$' -e '/e2e$$' -e '/badinput$$')
cross:
	@set -e; for p in $(CROSS); do \
		echo "GOOS=$${p%/*} GOARCH=$${p#*/} go build ./cmd/rfs && go vet"; \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -o /dev/null ./cmd/rfs; \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) vet $(CROSS_PKGS); \
	done

clean:
	rm -rf out rfs
