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
#   DURATION=10s CONNECTIONS=16 THREADS=2 CHANGES=20 WARMUP=2s
#   RUNS=3             rounds; each round measures every backend, each
#                      followed by OPA, on a new database
#   BACKENDS="sqlite postgres"
#   STEPGATE_BENCH_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable
#   STEPGATE_BIN=PATH  measure this binary instead of building ./cmd/stepgate
#   PROFILE=1          CPU-profile stepgate serve during each measurement
#                      (its --pprof-listen); the profiles go to
#                      bench/.cache/profiles/ and their top entries to stderr
#
# Every answer timed is checked (a Lua response() in wrk): stepgate's must
# be 201 with a check id not seen before, in the state and with the
# decision the same plan got before the run; OPA's must be 200 and the
# same document as before the run. After each stepgate measurement the
# audit log must hold the events of every check answered (and at most those
# of the requests still in flight when wrk stopped) and verify intact. A
# measurement that fails a check stops the script with exit 1.
#
# Needs wrk (apt-get install wrk), psql for PostgreSQL, jq, and builds OPA
# from the module in go.mod into bench/.cache (never committed). Prints
# Markdown tables.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
CHANGES=${CHANGES:-20}
RUNS=${RUNS:-3}
BACKENDS=${BACKENDS:-sqlite postgres}
PROFILE=${PROFILE:-0}
PGDSN=${STEPGATE_BENCH_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
export PGOPTIONS="-c client_min_messages=warning" # no NOTICE per table dropped
WORKSPACE=billing-prod

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'run-real: %s\n' "$*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk is required: apt-get install wrk"
command -v jq >/dev/null || die "jq is required: apt-get install jq"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/stepgate-bench-real.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

mkdir -p bench/.cache
if [[ -n ${STEPGATE_BIN:-} ]]; then
	SG=$STEPGATE_BIN
	say "measuring $SG"
else
	say "building stepgate"
	go build -o "$TMP/stepgate" ./cmd/stepgate
	SG=$TMP/stepgate
fi
say "OPA (from go.mod's module), the plan ($CHANGES changes)"
[ -x bench/.cache/opa ] || (cd tools/opa && go build -o ../../bench/.cache/opa github.com/open-policy-agent/opa)
go run ./bench/plangen -changes "$CHANGES" -o "$TMP/plan.json"
printf '{"input":' > "$TMP/opa-body.json"; cat "$TMP/plan.json" >> "$TMP/opa-body.json"; printf '}' >> "$TMP/opa-body.json"
if [[ $PROFILE == 1 ]]; then mkdir -p bench/.cache/profiles; fi

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 1 300); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; die "$1 never answered"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# cpu PID: the CPU time the process has used, user and system, in clock
# ticks. Per request it is the measure least moved by other work on the
# machine (wall-clock figures follow the machine's load).
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)
per_request_ms() { awk -v t="$1" -v n="$2" -v hz="$TCK" 'BEGIN { printf "%.1f", t * 1000 / hz / n }'; }

# wrk scripts. Each thread counts the answers that are what they must be
# (ok) and those that are not (bad); done() prints the totals as
# "ANSWERS ok bad requests" and the first wrong answer of each thread.
cat > "$TMP/stepgate.lua" <<LUA
local plan = io.open("$TMP/plan.json"):read("*a")
-- run: this invocation of wrk, so that no two send the same plan (the
-- same plan from the same token would resume its check: 200, not 201).
local run = tonumber(os.getenv("SG_RUN"))
local want_state = os.getenv("SG_STATE")
local want_decision = os.getenv("SG_DECISION")
local threads = {}
function setup(t) table.insert(threads, t); t:set("tid", #threads) end
n, ok, bad, first_bad = 0, 0, 0, ""
local seen = {}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("SG_TOKEN")
function request()
  n = n + 1
  local ts = string.format('"timestamp":"2025-01-12T06:15:24.%03d%03d%06dZ"', run, tid, n)
  return wrk.format(nil, nil, nil, (plan:gsub('"timestamp":"[^"]*"', ts, 1)))
end
function response(status, headers, body)
  local id = body:match('^%s*{%s*"id":%s*"(chk_[0-9a-f]+)"')
  if status == 201 and id and not seen[id]
    and body:find('"state":%s*"' .. want_state .. '"')
    and body:find('"decision":%s*"' .. want_decision .. '"') then
    seen[id] = true
    ok = ok + 1
  else
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. body:sub(1, 400) end
  end
end
function done(summary, latency, requests)
  local o, b = 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); b = b + t:get("bad")
    local f = t:get("first_bad")
    if f ~= "" then io.stderr:write("wrong answer: " .. f .. "\n") end
  end
  io.write(string.format("ANSWERS %d %d %d\n", o, b, summary.requests))
end
LUA
cat > "$TMP/opa.lua" <<LUA
local threads = {}
function setup(t) table.insert(threads, t) end
ok, bad, first_bad = 0, 0, ""
local want = io.open(os.getenv("OPA_WANT")):read("*a")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("$TMP/opa-body.json"):read("*a")
function response(status, headers, body)
  if status == 200 and body == want then
    ok = ok + 1
  else
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. body:sub(1, 400) end
  end
end
function done(summary, latency, requests)
  local o, b = 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); b = b + t:get("bad")
    local f = t:get("first_bad")
    if f ~= "" then io.stderr:write("wrong answer: " .. f .. "\n") end
  end
  io.write(string.format("ANSWERS %d %d %d\n", o, b, summary.requests))
end
LUA

# run_wrk NAME URL SCRIPT DURATION [warm]: sets RPS P50 P99 OK; a wrong
# answer, a socket error or an answer not counted makes the run invalid,
# and so does no answer at all, but in a warm-up (OPA may take longer than
# the warm-up to answer on a busy machine).
SG_RUN=0
run_wrk() {
	SG_RUN=$((SG_RUN + 1))
	export SG_RUN
	wrk -t"$THREADS" -c"$CONNECTIONS" -d"$4" --timeout 30s --latency -s "$3" "$2" > "$TMP/$1.wrk" 2> "$TMP/$1.err" || { cat "$TMP/$1.wrk" "$TMP/$1.err" >&2; die "$1: wrk failed"; }
	local rps p50 p99 errs ok bad total
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/$1.wrk")
	p50=$(awk '$1=="50%" {print $2}' "$TMP/$1.wrk")
	p99=$(awk '$1=="99%" {print $2}' "$TMP/$1.wrk")
	errs=$(awk '/Socket errors:|Non-2xx or 3xx responses:/ {print}' "$TMP/$1.wrk")
	read -r ok bad total < <(awk '$1=="ANSWERS" {print $2, $3, $4}' "$TMP/$1.wrk")
	if [[ -z ${ok:-} || $bad != 0 || $ok != "$total" || -n $errs || ($ok == 0 && ${5:-} != warm) ]]; then
		cat "$TMP/$1.wrk" "$TMP/$1.err" >&2
		die "$1: ${ok:-?} right answers, ${bad:-?} wrong, of ${total:-?} requests; $errs: the measurement is not valid"
	fi
	RPS=$rps P50=$p50 P99=$p99 OK=$ok
}

# events DSN: the number of audit events, after verifying the chain.
events() {
	local out
	out=$(STEPGATE_MASTER_KEY_FILE="$TMP/master.key" "$SG" audit verify --database "$1" --output json) || die "audit verify failed: $out"
	jq -e '.intact' <<<"$out" >/dev/null || die "the audit chain is not intact: $out"
	jq -r '.events' <<<"$out"
}

# quiesce PID: waits until the process is idle (under 5% of a core for
# 0.5 s), at most 60 s: OPA goes on evaluating the requests in flight when
# wrk stops (seconds of CPU on the equivalent policy), which would weigh on
# the next measurement.
quiesce() {
	local tck before after i
	tck=$(getconf CLK_TCK)
	for ((i = 0; i < 120; i++)); do
		before=$(awk '{print $14 + $15}' "/proc/$1/stat")
		sleep 0.5
		after=$(awk '{print $14 + $15}' "/proc/$1/stat")
		if (((after - before) * 100 < tck * 5 / 2)); then return 0; fi
	done
	die "process $1 is still busy after 60 s"
}

# categories PROFILE: bench/categories.sh (the same categories as
# bench/run-gate.sh).
source bench/categories.sh

ms() { # wrk's latency (850.00us, 12.34ms, 1.20s) in milliseconds
	awk -v x="$1" 'BEGIN { v = x + 0; if (x ~ /us$/) v /= 1000; else if (x ~ /[0-9]s$/ && x !~ /ms$/) v *= 1000; printf "%.1f", v }'
}

say "OPA server on the equivalent policy"
# The whole of bench/conftest: stepgate's rules, the adapter and functions
# that do in Rego what stepgate does in Go, and the default configuration as
# data (given as a file, it is the root of data, as conftest --data loads
# it). Beside it, a floor: a rule that only counts the plan's resource
# changes, so OPA reads the plan and answers, and evaluates nothing else.
cat > "$TMP/floor.rego" <<'REGO'
package floor

changes := count(input.resource_changes)
REGO
opa_port=$(free_port)
bench/.cache/opa run --server --addr "127.0.0.1:$opa_port" --log-level error \
	bench/conftest/*.rego bench/conftest/data/stepgate.json "$TMP/floor.rego" > "$TMP/opa.log" 2>&1 &
OPA_PID=$!
pids+=($OPA_PID)
wait_up "http://127.0.0.1:$opa_port/health"
OPA_URL="http://127.0.0.1:$opa_port/v1/data/main/deny"
FLOOR_URL="http://127.0.0.1:$opa_port/v1/data/floor/changes"
curl -fsS -X POST -H 'Content-Type: application/json' --data-binary @"$TMP/opa-body.json" "$OPA_URL" > "$TMP/opa-want.json"
curl -fsS -X POST -H 'Content-Type: application/json' --data-binary @"$TMP/opa-body.json" "$FLOOR_URL" > "$TMP/floor-want.json"
jq -e '.result | length > 0' "$TMP/opa-want.json" >/dev/null || die "OPA found nothing to deny in the plan: $(head -c 300 "$TMP/opa-want.json")"
jq -e --argjson n "$(jq '.resource_changes | length' "$TMP/plan.json")" '.result == $n' "$TMP/floor-want.json" >/dev/null || die "OPA's floor rule answered $(head -c 300 "$TMP/floor-want.json")"
say "OPA's answer: $(jq -c '[.result[] | .[0:60]]' "$TMP/opa-want.json" | head -c 300)"

cat > "$TMP/stepgate.yaml" <<YAML
server:
  limits: {checks_per_minute: -1, max_pending_per_token: -1}
YAML
say "per-token limits deliberately off for the benchmark"

# start_stepgate DB ROUND: starts serve on a new database; sets SG_PID,
# SG_URL, DSN, SG_TOKEN, PPROF_URL.
start_stepgate() {
	case $1 in
	sqlite) DSN="sqlite://$TMP/stepgate-$2.db" ;;
	postgres)
		SCHEMA="bench_real_$$_$2"
		psql -q "$PGDSN" -c "CREATE SCHEMA $SCHEMA" >&2
		DSN="$PGDSN&search_path=$SCHEMA&pool_max_conns=16"
		;;
	*) die "unknown backend $1" ;;
	esac
	local port pport=""
	port=$(free_port)
	local extra=()
	PPROF_URL=""
	if [[ $PROFILE == 1 ]]; then
		pport=$(free_port)
		extra=(--pprof-listen "127.0.0.1:$pport")
		PPROF_URL="http://127.0.0.1:$pport/debug/pprof/profile"
	fi
	rm -f "$TMP/master.key"
	STEPGATE_MASTER_KEY_FILE="$TMP/master.key" "$SG" serve --dev --config "$TMP/stepgate.yaml" \
		--database "$DSN" --listen "127.0.0.1:$port" "${extra[@]}" > "$TMP/serve-$1-$2.log" 2>&1 &
	SG_PID=$!
	pids+=($SG_PID)
	SG_URL="http://127.0.0.1:$port/v1/checks?workspace=$WORKSPACE"
	wait_up "http://127.0.0.1:$port/readyz"
	SG_TOKEN=$(STEPGATE_MASTER_KEY_FILE="$TMP/master.key" "$SG" tokens create --name bench --database "$DSN" 2>/dev/null)
	export SG_TOKEN
}

stop_stepgate() {
	kill -TERM "$SG_PID"
	wait "$SG_PID" || die "stepgate serve exited with status $? (log: $(tail -n 3 "$TMP/serve-$1-$2.log"))"
	if [[ $1 == postgres ]]; then psql -q "$PGDSN" -c "DROP SCHEMA $SCHEMA CASCADE" >&2; fi
}

# The answer the plan gets, and how many audit events one check writes.
probe() {
	local before after answer
	before=$(events "$DSN")
	answer=$(curl -fsS -X POST -H "Authorization: Bearer $SG_TOKEN" -H 'Content-Type: application/json' \
		--data-binary @"$TMP/plan.json" "$SG_URL") || die "the first check failed"
	after=$(events "$DSN")
	SG_STATE=$(jq -r .state <<<"$answer")
	SG_DECISION=$(jq -r .assessment.decision <<<"$answer")
	PER_CHECK=$((after - before))
	export SG_STATE SG_DECISION
	((PER_CHECK > 0)) || die "a check wrote no audit event"
}

RESULTS=$TMP/results.tsv
: > "$RESULTS"
for round in $(seq 1 "$RUNS"); do
	for db in $BACKENDS; do
		start_stepgate "$db" "$round"
		probe
		say "round $round/$RUNS, $db: a check is $SG_STATE ($SG_DECISION), $PER_CHECK audit events; stepgate then OPA, $CONNECTIONS connections, $WARMUP warm-up + $DURATION each"
		load_start=$(loadavg)
		run_wrk "sg-warm-$db-$round" "$SG_URL" "$TMP/stepgate.lua" "$WARMUP" warm
		base=$(events "$DSN")
		prof_pid=""
		if [[ -n $PPROF_URL ]]; then
			secs=$(( ${DURATION%s} - 2 )); ((secs > 0)) || secs=1
			prof="bench/.cache/profiles/cpu-$db-$round.pprof"
			(sleep 1; curl -fsS -o "$prof" "$PPROF_URL?seconds=$secs") &
			prof_pid=$!
		fi
		c0=$(cpu "$SG_PID")
		run_wrk "sg-$db-$round" "$SG_URL" "$TMP/stepgate.lua" "$DURATION"
		quiesce "$SG_PID"
		rps=$RPS p50=$P50 p99=$P99 ok=$OK
		sg_cpu=$(per_request_ms $(($(cpu "$SG_PID") - c0)) "$ok")
		[[ -z $prof_pid ]] || wait "$prof_pid" || die "fetching the profile failed"
		now=$(events "$DSN")
		got=$((now - base))
		if ((got < ok * PER_CHECK || got > (ok + CONNECTIONS) * PER_CHECK)); then
			die "$db: $ok checks answered but $got audit events written (want $((ok * PER_CHECK)) to $(((ok + CONNECTIONS) * PER_CHECK)))"
		fi
		export OPA_WANT=$TMP/opa-want.json
		run_wrk "opa-warm-$db-$round" "$OPA_URL" "$TMP/opa.lua" "$WARMUP" warm
		quiesce "$OPA_PID"
		c0=$(cpu "$OPA_PID")
		run_wrk "opa-$db-$round" "$OPA_URL" "$TMP/opa.lua" "$DURATION"
		orps=$RPS op50=$P50 op99=$P99 ook=$OK
		quiesce "$OPA_PID"
		opa_cpu=$(per_request_ms $(($(cpu "$OPA_PID") - c0)) "$ook")
		export OPA_WANT=$TMP/floor-want.json
		run_wrk "floor-warm-$db-$round" "$FLOOR_URL" "$TMP/opa.lua" "$WARMUP" warm
		c0=$(cpu "$OPA_PID")
		run_wrk "floor-$db-$round" "$FLOOR_URL" "$TMP/opa.lua" "$DURATION"
		frps=$RPS fp99=$P99
		quiesce "$OPA_PID"
		floor_cpu=$(per_request_ms $(($(cpu "$OPA_PID") - c0)) "$OK")
		load_end=$(loadavg)
		stop_stepgate "$db" "$round"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$db" "$rps" "$(ms "$p50")" "$(ms "$p99")" "$ok" \
			"$orps" "$(ms "$op50")" "$(ms "$op99")" "$ook" "$load_start" "$load_end" "$frps" "$(ms "$fp99")" "$sg_cpu" "$opa_cpu" "$floor_cpu" >> "$RESULTS"
		say "$db: stepgate $rps/s (p99 $p99, $ok checks, $got audit events, chain intact), OPA $orps/s (p99 $op99), OPA floor $frps/s (p99 $fp99); CPU per request: stepgate $sg_cpu ms, OPA $opa_cpu ms, floor $floor_cpu ms; load $load_start, then $load_end"
		if [[ -n $PPROF_URL ]]; then
			say "profile: $prof (go tool pprof -top $SG $prof)"
			categories "$prof" | awk -F'\t' '{ printf "    %5.1f%%  %s\n", $1, $2 }' >&2
			go tool pprof -top -nodecount=20 "$SG" "$prof" 2>/dev/null | sed -n '/flat%/,$p' >&2 || true
		fi
	done
done

rev=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
[[ -n ${STEPGATE_BIN:-} ]] && rev="$STEPGATE_BIN"
echo "stepgate: $rev; $(nproc) cores; $CONNECTIONS connections, $THREADS wrk threads, $DURATION per measurement after $WARMUP of warm-up; a $CHANGES-change plan, workspace $WORKSPACE: each check $SG_STATE ($SG_DECISION); $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
echo "Wall clock: requests per second and latency under wrk; the ratios are of requests per second in the same round."
echo
echo "| round | database | stepgate checks/s | p50 | p99 | OPA, equivalent policy: requests/s | p50 | p99 | stepgate / OPA | OPA floor: requests/s | p99 | stepgate / floor | load (1, 5, 15 min) at start; end |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
awk -F'\t' '{ printf "| %s | %s | %.0f | %s ms | %s ms | %.1f | %s ms | %s ms | %.1fx | %.0f | %s ms | %.2fx | %s; %s |\n", $1, $2, $3, $4, $5, $7, $8, $9, $3 / $7, $13, $14, $3 / $13, $11, $12 }' "$RESULTS"
echo
echo "CPU time of each server process per request answered (user + system, from /proc; wrk's own CPU not counted): what 2 cores could serve at most, whatever else runs."
echo
echo "| round | database | stepgate | OPA, equivalent policy | OPA floor | OPA / stepgate | floor / stepgate |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' '{ printf "| %s | %s | %s ms | %s ms | %s ms | %.1fx | %.2fx |\n", $1, $2, $15, $16, $17, $16 / $15, $17 / $15 }' "$RESULTS"
echo
for db in $BACKENDS; do
	awk -F'\t' -v db="$db" '$2 == db {
		r = $3 / $7; if (n == 0 || r < rlo) rlo = r; if (n == 0 || r > rhi) rhi = r
		f = $3 / $13; if (n == 0 || f < flo) flo = f; if (n == 0 || f > fhi) fhi = f
		c = $17 / $15; if (n == 0 || c < clo) clo = c; if (n == 0 || c > chi) chi = c
		if (n == 0 || $5 < plo) plo = $5; if (n == 0 || $5 > phi) phi = $5
		n++
	} END {
		if (n == 0) exit
		printf "- %s: stepgate / OPA on the equivalent policy %.1fx to %.1fx (goal at least 1.5x: %s); stepgate / OPA floor %.2fx to %.2fx (%s), in CPU per request %.2fx to %.2fx; p99 %s to %s ms (goal under 50 ms: %s)\n", db, rlo, rhi, (rlo >= 1.5 ? "met" : (rhi >= 1.5 ? "met in some runs" : "not met")), flo, fhi, (flo >= 1.5 ? "1.5x in every run" : (fhi >= 1.5 ? "1.5x in some runs" : "under 1.5x")), clo, chi, plo, phi, (phi < 50 ? "met" : (plo < 50 ? "met in some runs" : "not met"))
	}' "$RESULTS"
done
if [[ " $BACKENDS " == *" sqlite "* && " $BACKENDS " == *" postgres "* ]]; then
	awk -F'\t' '$2 == "sqlite" { s[$1] = $3 } $2 == "postgres" { p[$1] = $3 } END {
		n = 0
		for (r in p) if (r in s) { x = p[r] / s[r]; if (n == 0 || x < lo) lo = x; if (n == 0 || x > hi) hi = x; n++ }
		if (n > 0) printf "- PostgreSQL / SQLite in the same round: %.0f%% to %.0f%% (goal at least 75%%: %s)\n", lo * 100, hi * 100, (lo >= 0.75 ? "met" : (hi >= 0.75 ? "met in some runs" : "not met"))
	}' "$RESULTS"
fi
