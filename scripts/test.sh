#!/usr/bin/env bash
# Runs every voicegate test on a fresh machine: installs what the tests
# need (redis-server and chromium from Debian, the pinned npm SDKs,
# playwright-core and esbuild), checks formatting and
# vet, then runs the Go tests with the race detector. The tests start their
# own redis-server, simulator and gateways on loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
[ -x /usr/bin/chromium ] || missing+=(chromium) # the browser tests (e2e, headless)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng) # the browser tests' spoken microphone input
if [ ${#missing[@]} -gt 0 ]; then
	echo "==> installing ${missing[*]}"
	as_root apt-get update -q
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

echo "==> npm ci (e2e: official OpenAI SDKs, playwright-core, esbuild; pinned by e2e/package-lock.json)"
(cd e2e && npm ci --no-audit --no-fund --loglevel=error)

echo "==> npm ci (web/ui: the demo page's Agents SDK and esbuild; the web tests rebuild web/static/demo.js and fail if it is stale)"
(cd web/ui && npm ci --no-audit --no-fund --loglevel=error)

echo "==> gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './e2e/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...

echo "==> govulncheck (known vulnerabilities in code paths voicegate calls)"
govulncheck=$(command -v govulncheck || echo "$(go env GOPATH)/bin/govulncheck")
[ -x "$govulncheck" ] || go install golang.org/x/vuln/cmd/govulncheck@latest >/dev/null 2>&1 || true
if [ ! -x "$govulncheck" ]; then
	echo "skipped: govulncheck is not installed and 'go install golang.org/x/vuln/cmd/govulncheck@latest' failed (no module proxy?)"
else
	set +e; out=$("$govulncheck" ./... 2>&1); rc=$?; set -e
	if [ $rc = 0 ]; then
		echo "no known vulnerabilities"
	elif [ $rc != 3 ] && grep -q "fetching vulnerabilities" <<<"$out"; then
		echo "skipped: the vulnerability database is unreachable ($(grep -m1 'fetching vulnerabilities' <<<"$out"))"
	else
		echo "$out"; exit 1
	fi
fi

echo "==> go test -race ./..."
go test -race -count=1 -timeout 12m ./...

echo "==> benchmark harness smoke run (go run ./cmd/vgbench --short, under two minutes; report in \$TMPDIR)"
go run ./cmd/vgbench --short

echo "==> fuzz targets run on their own (a short smoke run)"
go test -run '^$' -fuzz FuzzParseAppend -fuzztime 3s ./internal/sim

echo "==> container image"
if [ "${VOICEGATE_SKIP_IMAGE:-}" = 1 ]; then
	echo "skipped: VOICEGATE_SKIP_IMAGE=1"
elif ! command -v docker >/dev/null 2>&1; then
	echo "skipped: docker is not installed (the Dockerfile builds a static, non-root, distroless image: docker build -t voicegate .)"
elif ! docker info >/dev/null 2>&1; then
	echo "skipped: the Docker daemon is not reachable (docker info failed); start it to build the image"
else
	docker build -q -t voicegate:test .
	docker run --rm voicegate:test version
	[ "$(docker image inspect -f '{{.Config.User}}' voicegate:test)" = 65532:65532 ] || { echo "image does not run as non-root"; exit 1; }
fi
