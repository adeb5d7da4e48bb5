#!/usr/bin/env bash
# Benchmark: the gate server (bench/gate) on SQLite and PostgreSQL. Rewrites
# the section "## The gate server" of docs/benchmarks.md and nothing else:
# what is above it (written by bench/run.sh) stays as it is, and the section
# is appended when the file has none.
#
#   bash bench/run-gate.sh
#
# Environment:
#   DURATION=10s       how long checks are created, per backend
#   WARMUP=2s          creating checks before that, not counted
#   CONCURRENCY=8      concurrent pipelines
#   WAKEUPS=30         wake-ups measured per case
#   BACKENDS="sqlite postgres"
#   STEPGATE_BENCH_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable
#                      a database where a fresh schema is created and dropped
#   PROFILE=1          CPU-profile the check creation (for "Where the time goes")
#   BENCH_OUT=FILE     the file whose section is rewritten (default docs/benchmarks.md)
#   BENCH_STRICT=1     exit 1 when a goal is not met
#
# A measurement that is not valid (an error answer, a grant that does not
# verify, a broken audit chain, a wake-up that never came) stops the script
# with exit 1 and leaves the file alone.
set -euo pipefail

export LC_ALL=C
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONCURRENCY=${CONCURRENCY:-8}
WAKEUPS=${WAKEUPS:-30}
BACKENDS=${BACKENDS:-sqlite postgres}
PROFILE=${PROFILE:-1}
BENCH_OUT=${BENCH_OUT:-docs/benchmarks.md}
BENCH_STRICT=${BENCH_STRICT:-0}
HEADING='## The gate server'

say() { printf '==> %s\n' "$*"; }

command -v jq >/dev/null 2>&1 || { echo "jq is required to write the report" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/stepgate-bench-gate.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

say "building bench/gate"
go build -o "$TMP/gate" ./bench/gate

# ---------------------------------------------------------------------------
# Measure

for db in $BACKENDS; do
	say "$db: $CONCURRENCY pipelines for $DURATION (after $WARMUP), $WAKEUPS wake-ups"
	args=(-db "$db" -duration "$DURATION" -warmup "$WARMUP" -concurrency "$CONCURRENCY" -wakeups "$WAKEUPS" -json)
	[[ $PROFILE == 1 ]] && args+=(-cpuprofile "$TMP/$db.cpu")
	rc=0
	"$TMP/gate" "${args[@]}" >"$TMP/$db.json" || rc=$?
	if ((rc != 0)); then
		echo "bench/gate -db $db failed (exit $rc): the measurement is not valid; $BENCH_OUT is left alone" >&2
		if [[ -s $TMP/$db.json ]]; then
			jq -r '.problems[]? | "  - " + .' "$TMP/$db.json" >&2 || true
		fi
		exit 1
	fi
	jq -r '.goals[] | "    " + (if .pass then "PASS" else "FAIL" end) + " " + .name + ": " + .measured + " (goal " + .target + ")"' "$TMP/$db.json"
done

# ---------------------------------------------------------------------------
# Where the CPU went: each profile sample is put in the first category, in
# this order, that one of its frames matches.

source bench/categories.sh

# ---------------------------------------------------------------------------
# Report

first=""
for db in $BACKENDS; do first=${first:-$db}; done
J() { jq -r "$@"; }
REV=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
DIRTY=""
# The report itself does not count: it is rewritten by every run.
EXCLUDE=()
[[ $BENCH_OUT != /* ]] && EXCLUDE=(":(exclude)$BENCH_OUT")
[[ -n $(git status --porcelain -- . "${EXCLUDE[@]}" 2>/dev/null | head -n 1) ]] && DIRTY=" (with uncommitted changes)"
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
name_of() { case $1 in sqlite) echo SQLite ;; postgres) echo PostgreSQL ;; *) echo "$1" ;; esac; }
# Latencies with one decimal: p50, p90, p99, max.
fmt_lat() { # json-path-to-latency file
	J "$1 | map_values(if type == \"number\" then . * 10 | round / 10 else . end) | \"p50 \\(.p50_ms) ms, p90 \\(.p90_ms) ms, p99 \\(.p99_ms) ms, max \\(.max_ms) ms\"" "$2"
}

SECTION=$TMP/section.md
{
	f=$TMP/$first.json
	cat <<EOF
$HEADING

The server itself, measured by \`bench/gate\` over real HTTP on 127.0.0.1:
the real store, keyring, policy engine, gate service, hub and HTTP API, wired
as \`stepgate serve\` wires them, in one process with the pipelines that load
it. This section is written by \`bash bench/run-gate.sh\`, which rewrites only
this section (\`bench/run.sh\` rewrites the whole file without it: run
\`run-gate.sh\` after it).

### What is measured

- **Creating checks.** $CONCURRENCY pipelines (\`internal/client\`, each
  with its own connections) send \`POST /v1/checks\` one after the other for
  $DURATION, after $WARMUP of warm-up that is not counted. The plan is a
  $(J .plan.changes "$f")-change Terraform plan of a dev stack ($(J .plan.bytes "$f")
  bytes in the \`terraform show -json\` format, with planned values, prior
  state and configuration) in workspace \`$(J .plan.workspace "$f")\`,
  environment \`$(J .plan.environment "$f")\`: the default policy allows it, so
  every check reads the plan, evaluates the policy, writes the check and its
  three audit events (created, allowed, grant issued) in one transaction and
  signs a grant. A tag value carries the request's number, so every request is
  a new plan (the same plan would resume the same check). Every answer must be
  a new allowed check with a grant; afterwards every grant is verified
  (signature, issuer, audience, workspace, check id, the plan's SHA-256) and
  the whole audit chain is verified as \`stepgate audit verify\` does. Latency
  is the client's: from sending the request to holding the decoded answer.
- **Wake-up.** A pipeline waits (\`GET /v1/checks/{id}/wait\`) on a pending
  check of \`examples/prod-iam.plan.json\` in \`billing-prod\`
  ($(J .wakeup.requirements "$f")); once the wait has reached the server, the
  last approval is recorded through \`gate.Service.Record\` (alice, aal 3,
  hwk). Measured: from just before \`Record\` to the waiting client holding the
  approved check with its grant, $WAKEUPS times. On PostgreSQL also across two
  servers (two stores on one schema, two services, hubs and HTTP servers): the
  client waits on server A, the approval goes through server B, and A hears of
  it only through LISTEN/NOTIFY.
- **One check, part by part.** The parts of a check timed one at a time from a
  single goroutine, with nothing else running (medians of 200).

### Machine

- CPU: $(J .machine.cpu "$f"), $(J .machine.cores "$f") cores; memory $(J '.machine.memory_gib * 10 | round / 10' "$f") GiB
- $(J .machine.go "$f") ($(J .machine.os "$f")), GOMAXPROCS $(J .machine.gomaxprocs "$f")
- Load average (1, 5, 15 min) at the start and end of each run: $(for db in $BACKENDS; do printf '%s %s, then %s; ' "$(name_of "$db")" "$(J .machine.loadavg "$TMP/$db.json")" "$(J .machine.loadavg_end "$TMP/$db.json")"; done | sed 's/; $//'). The benchmark
  alone keeps the 1-minute average near the number of cores; more is other
  work on the machine, and it shows in the numbers.
- The pipelines run in the benchmark's process and PostgreSQL on the same
  cores: all of it shares the $(J .machine.cores "$f") cores.
$(for db in $BACKENDS; do printf -- '- %s: %s\n' "$(name_of "$db")" "$(J .store "$TMP/$db.json")"; done)
- stepgate: commit $REV$DIRTY
- Date: $DATE
EOF

	for db in $BACKENDS; do
		f=$TMP/$db.json
		cat <<EOF

### $(name_of "$db")

| measurement | result |
| --- | --- |
| checks created | $(J '.create | "\(.checks) in \(.seconds * 10 | round / 10) s by \(.concurrency) pipelines: **\(.checks_per_sec | round) checks/s**, \(.errors) errors"' "$f") |
| latency of a check | $(fmt_lat .create.latency "$f") |
| the store transaction, under that load | $(fmt_lat .create.transaction "$f") (BEGIN to COMMIT) |
| fsync of 4 KiB on this disk | $(fmt_lat .fsync "$f") |
| CPU of the process per check | $(J '.create | "\(.cpu_per_check_ms * 10 | round / 10) ms (\(.cpu_cores_busy * 100 | round / 100) cores busy)"' "$f") |
| grants verified | $(J '.create | "\(.grants_verified) of \(.checks)"' "$f") |
| audit events written | $(J '.create | "\(.audit_events_written) (3 per check)"' "$f") |
| audit chain | $(J '.audit | "\(.events) events at the end of the run, " + (if .intact then "intact" else "**broken**: \(.error)" end)' "$f") |
| wake-up, one server | $(fmt_lat .wakeup.latency "$f") ($(J .wakeup.n "$f") times) |
| of which \`Record\` itself (its transaction) | $(fmt_lat .wakeup.record "$f") |
EOF
		if J -e '.wakeup_two_servers != null' "$f" >/dev/null; then
			cat <<EOF
| wake-up, two servers (LISTEN/NOTIFY) | $(fmt_lat .wakeup_two_servers.latency "$f") ($(J .wakeup_two_servers.n "$f") times) |
| of which \`Record\` on server B | $(fmt_lat .wakeup_two_servers.record "$f") |
| server A's hub hears of it | $(fmt_lat .wakeup_two_servers.notified "$f") after \`Record\` was called |
EOF
		fi
		if J -e '(.resume_lookup // []) | length > 0' "$f" >/dev/null; then
			echo "| looking for a check to resume, as the store grows | $(J '[.resume_lookup[] | "\(.p50_ms * 100 | round / 100) ms with \(.checks) allowed checks"] | join(", ")' "$f") (p50) |"
		fi
	done

	# One check, part by part: one column per backend.
	cat <<EOF

### One check, part by part

Medians of 200, one at a time, nothing else running (ms).

EOF
	header="| part |"
	sep="| --- |"
	for db in $BACKENDS; do header+=" $(name_of "$db") |"; sep+=" ---: |"; done
	printf '%s what |\n%s --- |\n' "$header" "$sep"
	nparts=$(J '.breakdown | length' "$TMP/$first.json")
	for ((i = 0; i < nparts; i++)); do
		row="| $(J ".breakdown[$i].name" "$TMP/$first.json") |"
		for db in $BACKENDS; do row+=" $(J ".breakdown[$i].p50_ms * 100 | round / 100" "$TMP/$db.json") |"; done
		row+=" $(J ".breakdown[$i].note" "$TMP/$first.json") |"
		echo "$row"
	done

	cat <<EOF

### Goals

From the issue, on this 2-core machine. Latency goals are judged on the p99.

EOF
	for db in $BACKENDS; do
		J '.goals[] | "- " + .name + ", goal " + .target + ": **" + (if .pass then "PASS" else "FAIL" end) + "** (" + .measured + ")"' "$TMP/$db.json"
	done
	failed=0
	for db in $BACKENDS; do
		jq -e '[.goals[] | select(.pass | not)] | length > 0' "$TMP/$db.json" >/dev/null && failed=1
	done
	if ((failed)); then
		cat <<EOF

A goal is not met on this machine. The throughput is bound by the CPU of
the 2 cores, which the pipelines share with the server (see "CPU of the
process per check"), so it follows the machine's speed: compare the
conftest and jq times at the top of this file with earlier runs. On
2026-11-30 commit fdecdb7 gave 563 checks/s on one machine of this kind
and 377 checks/s on another, whose conftest and jq times were 1.6 and
1.8 times longer.
EOF
	fi

	# Where the time goes: the profile, then what it means.
	printf '\n### Where the time goes\n'
	if [[ $PROFILE == 1 ]]; then
		cat <<EOF

CPU profile of the check-creation phase (the whole process: server and
pipelines), each sample counted once, in the first of these categories that
its stack touches:

EOF
		header="| |"
		sep="| --- |"
		for db in $BACKENDS; do header+=" $(name_of "$db") |"; sep+=" ---: |"; done
		echo "$header"
		echo "$sep"
		declare -A share=()
		cats=()
		for db in $BACKENDS; do
			while IFS=$'\t' read -r pct cat; do
				[[ -n $cat ]] || continue
				[[ -n ${share[$cat]+x} ]] || cats+=("$cat")
				share[$cat]=1
				share["$db|$cat"]=$pct
			done < <(categories "$TMP/$db.cpu")
		done
		for cat in "${cats[@]}"; do
			row="| $cat |"
			for db in $BACKENDS; do row+=" ${share["$db|$cat"]:-0.0}% |"; done
			echo "$row"
		done
	fi

	f=$TMP/$first.json
	num() { J "$1 | . * 100 | round / 100" "$2"; }
	r2() { awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }
	part() { J --arg n "$1" '.breakdown[] | select(.name == $n) | .p50_ms * 100 | round / 100' "$f"; }
	gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
	eval_default=$(part "evaluate the policy")
	eval_lean=$(part "evaluate the policy, type lists emptied")
	type_ms=$(awk -v a="$eval_default" -v b="$eval_lean" 'BEGIN { printf "%.1f", a - b }')
	input_ms=$(part "read the plan into the policy input")
	tx_ms=$(part "write the check and 3 audit events")
	patterns=$(J .policy.type_patterns "$f")
	globs=$(J .policy.glob_patterns "$f")
	plan_types=$(J .policy.plan_types "$f")
	cores=$(J .machine.cores "$f")
	cpu_check=$(J '.create.cpu_per_check_ms * 10 | round / 10' "$f")
	ceiling=$(awk -v c="$cpu_check" -v n="$cores" 'BEGIN { if (c > 0) printf "%d", n * 1000 / c; else print "n/a" }')
	budget=$(awk -v n="$cores" 'BEGIN { printf "%.0f", n * 1000 / 500 }')

	echo
	echo "What that means (part timings from the $(name_of "$first") run):"
	echo
	cat <<EOF
- **The policy.** Evaluating the default policy takes $eval_default ms; with
  its type lists cut to one pattern each, $eval_lean ms: matching the plan's
  $plan_types resource types against the $patterns type patterns
  (\`sensitive_types\`, \`stateful_types\`, $globs of them globs) costs
  about $type_ms ms, because \`stepgate.type_categories\` compiles the
  patterns once and remembers each type's categories. The rest is the rules
  themselves. Reading the plan into the policy input takes $input_ms ms.
  Together they are most of a check's CPU, and most of what the garbage
  collector has to clean up.
EOF
	cat <<EOF
- **The store.** A check's transaction (the check and its three audit events)
  takes $tx_ms ms alone on $(name_of "$first").
EOF
	if [[ " $BACKENDS " == *" sqlite "* ]]; then
		s=$TMP/sqlite.json
		cat <<EOF
  Under the load above, on SQLite, it takes $(fmt_lat .create.transaction "$s"):
  one writer at a time holds the database's lock, each commit waits for an
  fsync of the WAL (on this disk $(fmt_lat .fsync "$s"), measured by the
  benchmark), and the writers of the process queue for it in order (a Go
  semaphore, not SQLite's busy handler, which sleeps up to 100 ms between
  tries); most of that time is waiting in that queue$(J -e '.create.cpu_cores_busy < 0.8 * .machine.cores' "$s" >/dev/null && echo ", which leaves the cores idle part of the time ($(J '.create.cpu_cores_busy * 100 | round / 100' "$s") of $cores busy)").
  Committing the checks of concurrent requests together (group commit)
  would pay one fsync for many checks; \`synchronous=NORMAL\` in WAL mode
  would drop the fsync per commit, but a power loss could then lose the
  last commits (grants already handed out with their audit events), so
  stepgate keeps the default.
EOF
	fi
	if [[ " $BACKENDS " == *" postgres "* ]]; then
		cat <<EOF
  On PostgreSQL the audit chain's advisory lock serializes the same part
  across servers, and each commit waits for PostgreSQL's WAL flush (under load:
  $(fmt_lat .create.transaction "$TMP/postgres.json")).
EOF
	fi
	for db in $BACKENDS; do
		d=$TMP/$db.json
		J -e '(.resume_lookup // []) | length > 1' "$d" >/dev/null || continue
		lo=$(J '.resume_lookup[0].p50_ms' "$d")
		hi=$(J '.resume_lookup[-1].p50_ms' "$d")
		lo_n=$(J '.resume_lookup[0].checks' "$d")
		hi_n=$(J '.resume_lookup[-1].checks' "$d")
		if gt "$hi" 1 && gt "$hi" "$(awk -v l="$lo" 'BEGIN { print 3 * l }')"; then
			cat <<EOF
- **Looking for a check to resume** on $(name_of "$db"), which every request
  does first, grows with the store: $(r2 "$lo") ms with $lo_n allowed
  checks, $(r2 "$hi") ms with $hi_n. It reads every check in the
  resumable states instead of using its index: a plan made without the
  states' values (bound parameters; SQLite, or a generic plan of a prepared
  statement on PostgreSQL) cannot use the partial index \`WHERE state IN
  ('pending', 'allowed', 'approved')\`. Writing the states as literals in the
  query makes it an index lookup again. Allowed checks whose grant is never
  used stay allowed, so this never stops growing.
EOF
		else
			echo "- **Looking for a check to resume** on $(name_of "$db"), which every request does first, uses its index: $(r2 "$lo") ms with $lo_n allowed checks, $(r2 "$hi") ms with $hi_n."
		fi
	done
	cat <<EOF
- Signing the grant, loading the key, the JSON of the answer and HTTP itself
  are a fraction of a millisecond each.
- At $cpu_check ms of CPU per check (server and pipelines together), $cores
  cores cannot do more than about $ceiling checks/s. 500 checks/s on $cores
  cores needs $budget ms or less per check, load generator included.

A wake-up is one notification and one re-read of the check: the waiting
server's hub hears of the approval as soon as the store notifies (on
PostgreSQL, from the other server through LISTEN/NOTIFY), long before the 2 s
re-read that covers a lost notification. Its slowest cases, next to the
slowest \`Record\` (the approval's own transaction, which has to commit
before anyone can be woken):

EOF
	for db in $BACKENDS; do
		d=$TMP/$db.json
		line="- $(name_of "$db"): slowest wake-up $(num .wakeup.latency.max_ms "$d") ms, slowest \`Record\` $(num .wakeup.record.max_ms "$d") ms"
		if J -e '.wakeup_two_servers != null' "$d" >/dev/null; then
			line+="; across two servers $(num .wakeup_two_servers.latency.max_ms "$d") ms and $(num .wakeup_two_servers.record.max_ms "$d") ms"
		fi
		echo "$line."
	done
} >"$SECTION"

# Splice: everything before the heading, the new section, then whatever
# section follows ours (a later "## " heading), if any.
mkdir -p "$(dirname "$BENCH_OUT")"
[[ -f $BENCH_OUT ]] || : >"$BENCH_OUT"
awk -v heading="$HEADING" -v section="$SECTION" '
	function emit(   l) {
		while ((getline l < section) > 0) print l
		close(section)
	}
	state == "" && $0 == heading { state = "ours"; emit(); next }
	state == "ours" && /^## / { state = "after"; print "" }
	state == "ours" { next }
	{ print; last = $0; seen = 1 }
	END {
		if (state == "") { # no section yet: append it
			if (seen && last != "") print ""
			emit()
		}
	}
' "$BENCH_OUT" >"$TMP/out.md"
mv "$TMP/out.md" "$BENCH_OUT"
say "wrote the section \"$HEADING\" of $BENCH_OUT"

if [[ $BENCH_STRICT == 1 ]]; then
	for db in $BACKENDS; do
		if J -e '[.goals[] | select(.pass | not)] | length > 0' "$TMP/$db.json" >/dev/null; then
			exit 1
		fi
	done
fi

# The real binary side by side with OPA (bench/run-real.sh): REAL=1.
if [[ ${REAL:-0} == 1 ]]; then
	say "the real stepgate serve beside an OPA server (bench/run-real.sh)"
	bash bench/run-real.sh
fi
