#!/usr/bin/env bash
# Checks the Helm chart: builds Helm from the Go module proxy (a tool of
# tools/helm, kept out of stepgate's go.mod), then for every values file of
# deploy/helm/ci runs `helm lint --strict` and `helm template`, and checks
# that the stepgate.yaml the chart writes is one stepgate accepts; every
# values file of deploy/helm/ci/fail must be refused.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin="${HELM:-}"
if [ -z "$bin" ]; then
	bin="$PWD/.cache/bin/helm"
	(cd tools/helm && go build -o "$bin" helm.sh/helm/v4/cmd/helm)
fi
"$bin" version --short

chart=deploy/helm/stepgate
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
go build -o "$out/checkconfig" ./deploy/helm/checkconfig

for v in deploy/helm/ci/*.yaml; do
	echo "== $v"
	"$bin" lint --strict "$chart" -f "$v"
	"$bin" template release "$chart" -f "$v" > "$out/manifests.yaml"
	"$out/checkconfig" < "$out/manifests.yaml"
	grep -E '^kind: ' "$out/manifests.yaml" | sort | uniq -c
done
for v in deploy/helm/ci/fail/*.yaml; do
	echo "== $v (must be refused)"
	if "$bin" template release "$chart" -f "$v" > /dev/null 2> "$out/err"; then
		echo "helm template accepted $v"; exit 1
	fi
	want="$(sed -n 's/^# must fail: //p' "$v")"
	grep -qF "$want" "$out/err" || { echo "refused, but not saying: $want"; cat "$out/err"; exit 1; }
	grep -m1 "^Error" "$out/err" | head -c 300; echo
done
echo "helm chart: ok"
