# rfs — build embedded Linux images with a squashfs root and an overlay upper.
#   make demo   build the default image (qemu-arm64) and boot it in QEMU
#   make test   the whole test suite (unit, kernel mounts as root, QEMU boots)

GO      ?= go
BOARD   ?= qemu-arm64
IMAGE   ?= out/$(BOARD).img

.PHONY: all build deps demo test e2e unit bench soak fuzz lint clean

all: build

build:
	$(GO) build -o rfs ./cmd/rfs

deps:
	@./scripts/deps.sh

demo: deps build
	./rfs build --board $(BOARD) -o $(IMAGE)
	./rfs run $(IMAGE)

# The whole suite. Tests that need root (loop mounts) or QEMU skip with a
# message when those are missing; CI runs them all.
# Then every fuzz target for FUZZTIME each (the readers of untrusted bytes).
test: deps
	$(GO) vet ./...
	$(GO) test -timeout 25m ./...
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

unit:
	$(GO) test -short ./...

e2e: deps
	$(GO) test -timeout 20m -v -run . ./e2e/

# Power-loss soak: QEMU killed at random moments during factory reset and
# first-boot growth, SOAK trials more than the suite's 20 (seed: RFS_E2E_SEED).
SOAK ?= 200
soak: deps
	RFS_E2E_SOAK=$(SOAK) $(GO) test -timeout 0 -v -run 'TestPowerLoss' ./e2e/

# Every fuzz target for FUZZTIME each (default 10s; e.g. make fuzz FUZZTIME=5m).
FUZZTIME ?= 10s
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

bench: deps build
	./bench/run.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

clean:
	rm -rf out rfs
