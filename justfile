# tether's recipes. `just` lists them.

version := `git describe --tags --always --dirty 2>/dev/null || echo dev`
commit := `git rev-parse HEAD 2>/dev/null || true`
ldflags := "-s -w -X main.version=" + version + " -X main.commit=" + commit

# List the recipes.
default:
    @just --list

# Build ./tether for this machine.
build:
    CGO_ENABLED=0 go build -trimpath -ldflags "{{ldflags}}" -o tether .

# Run every test (unit and end-to-end; e2e skips without sshd/Chromium).
test:
    go test ./...

# Run the end-to-end tests only, failing if sshd or Chromium is missing.
e2e:
    TETHER_E2E=require go test -count=1 ./e2e/...

# Install the real apps (Jupyter, Shiny from Debian; code-server from npm) and run the preset tests against them.
e2e-apps:
    bash .ci/install-apps
    TETHER_E2E=require TETHER_E2E_APPS=1 go test -count=1 -run 'TestPreset|TestAppsHost' -v ./e2e/apps/

# Compare tether with OpenSSH `ssh -L` side by side on loopback (needs sshd).
bench *ARGS:
    go run ./e2e/bench {{ARGS}}

# The fault campaign in full: 100 random drops and spikes through Toxiproxy under a live session (about 8 minutes; CI runs 30). SEED replays a run.
faults N="100" SEED="":
    TETHER_E2E=require TETHER_FAULTS={{N}} TETHER_FAULTS_SEED={{SEED}} go test -count=1 -timeout 60m -run TestFaultCampaign -v ./e2e/faults/

# 30 minutes (or DUR) of mixed traffic and a fault a minute through one session, sampling memory, fds and goroutines every 30 s (not in CI).
soak DUR="30m":
    TETHER_E2E=require TETHER_SOAK={{DUR}} go test -count=1 -timeout 2h -run TestSoak -v ./e2e/faults/

# Go micro-benchmarks of the packages.
microbench:
    go test -run '^$' -bench . -benchmem ./tunnel/ ./tokenserver/

# The release: dist/tether_VERSION_OS_ARCH.tar.gz (.zip for Windows) for linux/amd64, linux/arm64, darwin/amd64, darwin/arm64 and windows/amd64, and dist/checksums.txt; the same commit, VERSION and Go give the same bytes.
release VERSION:
    go run ./internal/release {{VERSION}}

# Build plain binaries into dist/ (the launcher uploads tether-<os>-<arch> from beside itself).
cross:
    #!/usr/bin/env bash
    set -euo pipefail
    mkdir -p dist
    for target in linux/amd64 linux/arm64 darwin/arm64 darwin/amd64 windows/amd64; do
        os=${target%/*}; arch=${target#*/}; ext=""
        [ "$os" = windows ] && ext=.exe
        echo "dist/tether-$os-$arch$ext"
        CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "{{ldflags}}" -o "dist/tether-$os-$arch$ext" .
    done

# gofmt and go vet.
lint:
    #!/usr/bin/env bash
    set -euo pipefail
    bad=$(gofmt -l .)
    if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi
    go vet ./...

# The whole flow on this machine with nothing to set up.
demo *ARGS:
    go run . demo {{ARGS}}

# What CI runs.
ci:
    bash .ci/run
