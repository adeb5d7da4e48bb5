#!/usr/bin/env bash
# Benchmark: the real `stepgate serve` binary, side by side with an OPA
# server evaluating the equivalent policy (bench/conftest/policy.rego) on
# the same plan, in the same run, under the same load: wrk, CONNECTIONS
# connections, each request to stepgate a NEW check (POST /v1/checks with
# the plan made unique by its timestamp, so nothing is resumed), each
# request to OPA one evaluation of the plan (POST /v1/data/main/deny).
# stepgate also records the check, its assessment and audit events; OPA only
# evaluates.
#
#   bash bench/run-real.sh
#
# Environment:
#   DURATION=10s CONNECTIONS=16 THREADS=2 CHANGES=20
#   BACKENDS="sqlite postgres"
#   STEPGATE_BENCH_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable
#
# Needs wrk (apt-get install wrk), psql for PostgreSQL, and builds OPA
# from the module in go.mod into bench/.cache (never committed). Prints a
# Markdown table; an answer that is not 2xx makes the run invalid (exit 1).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
CHANGES=${CHANGES:-20}
BACKENDS=${BACKENDS:-sqlite postgres}
PGDSN=${STEPGATE_BENCH_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}

say() { printf '==> %s\n' "$*" >&2; }
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/stepgate-bench-real.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

mkdir -p bench/.cache
say "building stepgate, OPA (from go.mod's module), the plan ($CHANGES changes)"
go build -o "$TMP/stepgate" ./cmd/stepgate
[ -x bench/.cache/opa ] || (cd tools/opa && go build -o ../../bench/.cache/opa github.com/open-policy-agent/opa)
go run ./bench/plangen -changes "$CHANGES" -o "$TMP/plan.json"
printf '{"input":' > "$TMP/opa-body.json"; cat "$TMP/plan.json" >> "$TMP/opa-body.json"; printf '}' >> "$TMP/opa-body.json"

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 1 300); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "$1 never answered" >&2; exit 1; }

# wrk scripts: stepgate gets a new plan each request (a unique timestamp,
# per thread and request), OPA the same document each time.
cat > "$TMP/stepgate.lua" <<LUA
local plan = io.open("$TMP/plan.json"):read("*a")
local threads, n = 0, 0
function setup(t) threads = threads + 1; t:set("tid", threads) end
function init(args) tid = tid or 0 end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("SG_TOKEN")
function request()
  n = n + 1
  local ts = string.format('"timestamp":"2025-01-12T06:15:24.%03d%06dZ"', tid, n)
  return wrk.format(nil, nil, nil, (plan:gsub('"timestamp":"[^"]*"', ts, 1)))
end
LUA
cat > "$TMP/opa.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("$TMP/opa-body.json"):read("*a")
LUA

# run_wrk NAME URL SCRIPT: prints "rps p50 p99 non2xx".
run_wrk() {
	wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$3" "$2" > "$TMP/$1.wrk" 2>&1
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/$1.wrk")
	p50=$(awk '$1=="50%" {print $2}' "$TMP/$1.wrk")
	p99=$(awk '$1=="99%" {print $2}' "$TMP/$1.wrk")
	bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$TMP/$1.wrk"); bad=${bad:-0}
	errs=$(awk '/Socket errors:/ {print}' "$TMP/$1.wrk")
	echo "$rps $p50 $p99 $bad"
	if [ "$bad" != 0 ] || [ -n "$errs" ]; then
		echo "$1: $bad answers not 2xx, $errs: the measurement is not valid" >&2; cat "$TMP/$1.wrk" >&2; exit 1
	fi
}

say "OPA server on the equivalent policy"
opa_port=$(free_port)
bench/.cache/opa run --server --addr "127.0.0.1:$opa_port" --log-level error bench/conftest/policy.rego > "$TMP/opa.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$opa_port/health"
curl -fsS -X POST -H 'Content-Type: application/json' --data-binary @"$TMP/opa-body.json" "http://127.0.0.1:$opa_port/v1/data/main/deny" | head -c 300 >&2; echo >&2

printf 'limits deliberately off for the benchmark\n' >&2
cat > "$TMP/stepgate.yaml" <<YAML
server:
  limits: {checks_per_minute: -1, max_pending_per_token: -1}
YAML

echo "| server | database | requests/s | p50 | p99 |"
echo "| --- | --- | --- | --- | --- |"
read -r rps p50 p99 _ < <(run_wrk opa-warm "http://127.0.0.1:$opa_port/v1/data/main/deny" "$TMP/opa.lua")
for db in $BACKENDS; do
	case $db in
	sqlite) dsn="sqlite://$TMP/stepgate.db" ;;
	postgres)
		schema="bench_real_$$"
		psql -q "$PGDSN" -c "CREATE SCHEMA $schema" >&2
		dsn="$PGDSN&search_path=$schema&pool_max_conns=16"
		;;
	esac
	port=$(free_port)
	STEPGATE_MASTER_KEY_FILE="$TMP/master.key" "$TMP/stepgate" serve --dev --config "$TMP/stepgate.yaml" \
		--database "$dsn" --listen "127.0.0.1:$port" > "$TMP/serve-$db.log" 2>&1 &
	sg=$!; pids+=($sg)
	wait_up "http://127.0.0.1:$port/readyz"
	export SG_TOKEN
	SG_TOKEN=$(STEPGATE_MASTER_KEY_FILE="$TMP/master.key" "$TMP/stepgate" tokens create --name bench --database "$dsn")
	say "$db: stepgate, then OPA, $CONNECTIONS connections for $DURATION each"
	read -r rps p50 p99 _ < <(run_wrk "stepgate-$db" "http://127.0.0.1:$port/v1/checks?workspace=billing-prod" "$TMP/stepgate.lua")
	echo "| stepgate serve (new check each request) | $db | $rps | $p50 | $p99 |"
	read -r orps op50 op99 _ < <(run_wrk "opa-$db" "http://127.0.0.1:$opa_port/v1/data/main/deny" "$TMP/opa.lua")
	echo "| OPA server (evaluation only) | — | $orps | $op50 | $op99 |"
	echo "| ratio stepgate / OPA | | $(awk -v a="$rps" -v b="$orps" 'BEGIN {printf "%.2fx", a/b}') | | |"
	kill -TERM "$sg"; wait "$sg" || true
	if [ "$db" = postgres ]; then psql -q "$PGDSN" -c "DROP SCHEMA $schema CASCADE" >&2; fi
	rm -f "$TMP/master.key"
done
