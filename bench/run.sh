#!/usr/bin/env bash
# Benchmark: stepgate eval against conftest and jq on one large Terraform
# plan. Writes docs/benchmarks.md. See bench/README.md.
#
#   bash bench/run.sh
#
# Environment:
#   RUNS=5            runs per tool; the best wall time is kept
#   CHANGES=20000     resource_changes in the generated plan
#   SEED=1            plangen seed
#   SKIP_STEPGATE=1   measure conftest and jq only (stepgate not built)
#   STEPGATE_BIN=PATH measure this stepgate binary instead of building one
#   BENCH_OUT=FILE    where to write the report (default docs/benchmarks.md)
#   BENCH_STRICT=1    exit 1 when a goal is not met
set -euo pipefail

export LC_ALL=C
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

RUNS=${RUNS:-5}
CHANGES=${CHANGES:-20000}
SEED=${SEED:-1}
SKIP_STEPGATE=${SKIP_STEPGATE:-0}
STEPGATE_BIN=${STEPGATE_BIN:-}
BENCH_OUT=${BENCH_OUT:-docs/benchmarks.md}
BENCH_STRICT=${BENCH_STRICT:-0}
CONFTEST_VERSION=v0.71.1
WORKSPACE=billing-prod
CACHE=$ROOT/bench/.cache

# Goals.
GOAL_SPEEDUP=10 # stepgate at least this many times faster than conftest
GOAL_RSS_MIB=100 # stepgate's peak RSS at most this
GOAL_USER_SPEEDUP=8 # with one module of the user's own loaded, at least this

if ! [[ $RUNS =~ ^[1-9][0-9]*$ ]]; then
	echo "RUNS must be a positive integer, not '$RUNS'" >&2
	exit 2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/stepgate-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
is_root() { [[ $(id -u) == 0 ]]; }
now() {
	if [[ -n ${EPOCHREALTIME:-} ]]; then
		echo "$EPOCHREALTIME"
	else
		date +%s.%N
	fi
}

# ---------------------------------------------------------------------------
# Tools

# GNU time, for peak RSS.
TIMECMD=""
find_time() {
	local c
	for c in /usr/bin/time gtime; do
		if command -v "$c" >/dev/null 2>&1 && "$c" -f '%e %M' -o /dev/null true 2>/dev/null; then
			TIMECMD=$(command -v "$c")
			return 0
		fi
	done
	return 1
}
if ! find_time; then
	if is_root && command -v apt-get >/dev/null 2>&1; then
		say "GNU time is missing: installing it with 'apt-get install -y time' (running as root)"
		apt-get install -y -qq time >/dev/null 2>&1 ||
			{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq time >/dev/null 2>&1; } || true
		find_time || true
	fi
fi
if [[ -z $TIMECMD ]]; then
	say "GNU time not found: wall times only, peak RSS will read n/a (install the 'time' package)"
fi

if ! command -v jq >/dev/null 2>&1; then
	if is_root && command -v apt-get >/dev/null 2>&1; then
		say "jq is missing: installing it with 'apt-get install -y jq' (running as root)"
		apt-get install -y -qq jq >/dev/null 2>&1 ||
			{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq jq >/dev/null 2>&1; }
	else
		echo "jq is required (it is also one of the tools measured)" >&2
		exit 1
	fi
fi
JQ=$(command -v jq)

# conftest: from PATH, else from bench/.cache, else go install into $TMP/bin
# and cache the binary.
CONFTEST=""
CONFTEST_ORIGIN=""
if command -v conftest >/dev/null 2>&1; then
	CONFTEST=$(command -v conftest)
	CONFTEST_ORIGIN="from PATH ($CONFTEST)"
elif [[ -x $CACHE/bin/conftest && $(cat "$CACHE/conftest.version" 2>/dev/null) == "$CONFTEST_VERSION" ]]; then
	CONFTEST=$CACHE/bin/conftest
	CONFTEST_ORIGIN="go install, cached in bench/.cache"
else
	say "installing conftest $CONFTEST_VERSION (go install; cached in bench/.cache/)"
	(cd "$TMP" && GOBIN="$TMP/bin" GOFLAGS=-mod=mod go install "github.com/open-policy-agent/conftest@$CONFTEST_VERSION")
	mkdir -p "$CACHE/bin"
	cp "$TMP/bin/conftest" "$CACHE/bin/conftest.new"
	mv "$CACHE/bin/conftest.new" "$CACHE/bin/conftest"
	echo "$CONFTEST_VERSION" >"$CACHE/conftest.version"
	CONFTEST=$CACHE/bin/conftest
	CONFTEST_ORIGIN="go install"
fi
# A go-installed conftest calls itself "dev": ours is $CONFTEST_VERSION.
WANT=$CONFTEST_VERSION
[[ $CONFTEST_ORIGIN == "from PATH"* ]] && WANT=""
CONFTEST_V=$("$CONFTEST" --version 2>/dev/null | awk -v want="$WANT" '
	/^Conftest:/ { c = $2 } /^OPA:/ { o = $2 }
	END { if ((c == "dev" || c == "") && want != "") c = want; printf "%s (OPA %s)", c, o }')

# The commit measured, and whether the tree differs from it, as it is when
# stepgate is built. The report itself does not count: every run rewrites it.
REV=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
DIRTY=""
EXCLUDE=()
[[ $BENCH_OUT != /* ]] && EXCLUDE=(":(exclude)$BENCH_OUT")
[[ -n $(git status --porcelain -- . "${EXCLUDE[@]}" 2>/dev/null | head -n 1) ]] && DIRTY=" (with uncommitted changes)"

# ---------------------------------------------------------------------------
# Build and generate

STEPGATE=$TMP/stepgate
if [[ $SKIP_STEPGATE == 1 ]]; then
	say "SKIP_STEPGATE=1: stepgate is not measured"
elif [[ -n $STEPGATE_BIN ]]; then
	STEPGATE=$(cd "$(dirname "$STEPGATE_BIN")" && pwd)/$(basename "$STEPGATE_BIN")
	say "using stepgate binary $STEPGATE"
else
	say "building stepgate"
	if ! go build -o "$STEPGATE" ./cmd/stepgate; then
		echo "stepgate does not build; SKIP_STEPGATE=1 measures conftest and jq only" >&2
		exit 1
	fi
fi

say "generating a plan with $CHANGES resource changes (seed $SEED)"
go build -o "$TMP/plangen" ./bench/plangen
PLAN=$TMP/big.json
"$TMP/plangen" -changes "$CHANGES" -seed "$SEED" -o "$PLAN"
PLAN_BYTES=$(wc -c <"$PLAN" | tr -d ' ')
PLAN_MB=$(awk -v b="$PLAN_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')
note "$PLAN_MB MB ($PLAN_BYTES bytes)"

# ---------------------------------------------------------------------------
# Measure

declare -A BEST PEAK CMDLINE CPU OKCODES

# measure_run NAME I: run I of tool NAME (its command is the array
# CMD_NAME, its accepted exit codes OKCODES[NAME]), stdout to
# $TMP/NAME.out; keeps the best wall time, the best CPU time (user + system)
# and the highest peak RSS.
measure_run() {
	local name=$1 i=$2 rc=0 t0 t1 wall rss="n/a" cpu=""
	local -n cmd="CMD_${name//-/_}"
	t0=$(now)
	if [[ -n $TIMECMD ]]; then
		"$TIMECMD" -o "$TMP/$name.time" -f '%e %M %U %S' "${cmd[@]}" >"$TMP/$name.out" 2>"$TMP/$name.err" || rc=$?
	else
		"${cmd[@]}" >"$TMP/$name.out" 2>"$TMP/$name.err" || rc=$?
	fi
	t1=$(now)
	if [[ " ${OKCODES[$name]} " != *" $rc "* ]]; then
		echo "$name exited with status $rc (expected one of: ${OKCODES[$name]}); its stderr:" >&2
		sed 's/^/    /' "$TMP/$name.err" | tail -n 20 >&2
		exit 1
	fi
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	if [[ -n $TIMECMD ]]; then
		rss=$(tail -n 1 "$TMP/$name.time" | awk '{ print $2 }')
		cpu=$(tail -n 1 "$TMP/$name.time" | awk '{ printf "%.2f", $3 + $4 }')
		if ((rss > ${PEAK[$name]:-0})); then PEAK[$name]=$rss; fi
		if [[ -z ${CPU[$name]:-} ]] || awk -v a="$cpu" -v b="${CPU[$name]}" 'BEGIN { exit !(a < b) }'; then
			CPU[$name]=$cpu
		fi
	fi
	if [[ -z ${BEST[$name]:-} ]] || awk -v a="$wall" -v b="${BEST[$name]}" 'BEGIN { exit !(a < b) }'; then
		BEST[$name]=$wall
	fi
	if [[ $rss == n/a ]]; then
		note "$name run $i: ${wall} s (exit $rc)"
	else
		note "$name run $i: ${wall} s, CPU ${cpu} s, peak RSS $(awk -v k="$rss" 'BEGIN { printf "%.0f", k / 1024 }') MiB (exit $rc)"
	fi
}

mib() { [[ -n ${1:-} ]] && awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }' || echo "n/a"; }

TOOLS=()
if [[ $SKIP_STEPGATE != 1 ]]; then
	CMDLINE[stepgate]="stepgate eval --plan big.json --workspace $WORKSPACE --output json"
	# Exit 3 and 4 are step_up and deny: the gate did its job.
	CMD_stepgate=("$STEPGATE" eval --plan "$PLAN" --workspace "$WORKSPACE" --output json)
	OKCODES[stepgate]="0 3 4"
	# The same with one module of the user's own loaded: the input then
	# carries every attribute (no projection), as users' rules may read
	# anything.
	mkdir -p "$TMP/userpolicy"
	cat >"$TMP/userpolicy/acme.rego" <<'REGO'
package stepgate.rules.acme

import data.stepgate.lib

# A rule of the user's own: a bucket's ACL may not be public-read-write.
findings contains f if {
	some c in lib.changes
	c.after.acl == "public-read-write"
	f := {"rule": "acme.bucket_acl", "decision": "deny", "addresses": [c.address], "reason": "A bucket writable by anyone."}
}
REGO
	CMDLINE[stepgate-user]="stepgate eval --plan big.json --workspace $WORKSPACE --output json --policy acme/"
	CMD_stepgate_user=("$STEPGATE" eval --plan "$PLAN" --workspace "$WORKSPACE" --output json --policy "$TMP/userpolicy")
	OKCODES[stepgate-user]="0 3 4"
	TOOLS+=(stepgate stepgate-user)
fi
CMDLINE[conftest]="conftest test --no-color --policy bench/conftest --data bench/conftest/data big.json"
CMD_conftest=("$CONFTEST" test --no-color --policy bench/conftest --data bench/conftest/data "$PLAN")
# conftest exits 1 when a deny rule fires, which it does on this plan.
OKCODES[conftest]="0 1"
JQ_FILTER='[.resource_changes[] | select(.change.actions != ["no-op"])] | length'
CMDLINE[jq]="jq '$JQ_FILTER' big.json"
CMD_jq=("$JQ" "$JQ_FILTER" "$PLAN")
OKCODES[jq]="0"
TOOLS+=(conftest jq)

# The runs are interleaved, one of each tool per round, so that every tool
# meets the same load when the machine is shared.
for ((i = 1; i <= RUNS; i++)); do
	say "round $i of $RUNS: ${TOOLS[*]}"
	for t in "${TOOLS[@]}"; do
		measure_run "$t" "$i"
	done
done

if [[ $SKIP_STEPGATE != 1 ]]; then
	if "$JQ" -e . "$TMP/stepgate.out" >/dev/null 2>&1; then
		note "stepgate output: valid JSON, $(wc -c <"$TMP/stepgate.out" | tr -d ' ') bytes; top-level keys: $("$JQ" -r 'if type == "object" then keys | join(", ") else type end' "$TMP/stepgate.out")"
		d=$("$JQ" -r '.decision // .outcome // .result // empty | tostring' "$TMP/stepgate.out" 2>/dev/null || true)
		[[ -n $d ]] && note "decision: $d"
	else
		note "WARNING: stepgate's output is not valid JSON"
	fi
fi

if ! grep -Eq '^[0-9]+ tests?, ' "$TMP/conftest.out" || grep -Eq ', [1-9][0-9]* exceptions?' "$TMP/conftest.out"; then
	echo "conftest did not evaluate the policy cleanly:" >&2
	cat "$TMP/conftest.out" "$TMP/conftest.err" >&2
	exit 1
fi
CONFTEST_HITS=$(sed -nE 's/^(FAIL|WARN) - .* - main - ([a-z]+\.[a-z]+): .*$/\2 (\1)/p' "$TMP/conftest.out" |
	sort | paste -sd ',' - | sed 's/,/, /g' || true)
note "conftest rule hits: ${CONFTEST_HITS:-none}"

# The answers must agree: the same rules, each with the same number of
# addresses and the same first ten (sorted), and the same kind of answer
# (conftest's FAIL is stepgate's step_up or deny, WARN its allow).
AGREE="not checked (SKIP_STEPGATE=1)"
if [[ $SKIP_STEPGATE != 1 ]]; then
	"$JQ" -r '.findings[] | [.rule, (if .decision == "allow" then "WARN" else "FAIL" end),
		(.addresses | length | tostring), (.addresses | sort | .[0:10] | join(", "))] | join("|")' \
		"$TMP/stepgate.out" | sort >"$TMP/findings.stepgate"
	sed -nE 's/^(FAIL|WARN) - .* - main - ([a-z]+\.[a-z]+): .* Addresses \(([0-9]+)\): (.*)$/\2|\1|\3|\4/p' \
		"$TMP/conftest.out" | sort >"$TMP/findings.conftest"
	if [[ ! -s $TMP/findings.stepgate ]]; then
		echo "stepgate reported no findings on the benchmark plan: nothing to compare" >&2
		exit 1
	fi
	if ! diff -u "$TMP/findings.stepgate" "$TMP/findings.conftest" >"$TMP/findings.diff"; then
		echo "stepgate and conftest disagree on the findings (rule|kind|addresses|first ten):" >&2
		sed 's/^/    /' "$TMP/findings.diff" | cut -c1-400 >&2
		exit 1
	fi
	AGREE="yes: $(wc -l <"$TMP/findings.stepgate" | tr -d ' ') findings, the same rules, kinds, address counts and first addresses ($(cut -d'|' -f1,3 "$TMP/findings.stepgate" | sed 's/|/: /' | paste -sd ',' - | sed 's/,/, /g'))"
	note "findings agree: $AGREE"
fi

JQ_COUNT=$(tr -d ' \n' <"$TMP/jq.out")
note "resource changes that are not no-op: $JQ_COUNT"

# ---------------------------------------------------------------------------
# Report

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }'; }

CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
MEM=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)
GOV=$(go version)
JQV=$("$JQ" --version 2>/dev/null || echo "jq")
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)

row() { # tool
	local t=$1 vs="1.0x (baseline)"
	if [[ $t != stepgate ]]; then
		if [[ -n ${BEST[stepgate]:-} ]]; then
			vs="$t / stepgate = $(ratio "${BEST[$t]}" "${BEST[stepgate]}")x"
		else
			vs="n/a (stepgate not measured)"
		fi
	fi
	# A | inside a table cell, even in a code span, must be escaped.
	printf '| %s | `%s` | %s | %s | %s | %s |\n' "$t" "${CMDLINE[$t]//|/\\|}" "${BEST[$t]}" "${CPU[$t]:-n/a}" "$(mib "${PEAK[$t]:-}")" "$vs"
}

SPEED_LINE="- stepgate at least ${GOAL_SPEEDUP}x faster than conftest: **not measured** (SKIP_STEPGATE=1)"
USER_LINE="- with one module of the user's own loaded, at least ${GOAL_USER_SPEEDUP}x faster than conftest: **not measured** (SKIP_STEPGATE=1)"
RSS_LINE="- stepgate peak RSS at most ${GOAL_RSS_MIB} MiB: **not measured** (SKIP_STEPGATE=1)"
FAILED=0
if [[ -n ${BEST[stepgate]:-} ]]; then
	SPEEDUP=$(ratio "${BEST[conftest]}" "${BEST[stepgate]}")
	v=PASS
	if ! awk -v s="$SPEEDUP" -v g="$GOAL_SPEEDUP" 'BEGIN { exit !(s >= g) }'; then v=FAIL; FAILED=1; fi
	SPEED_LINE="- stepgate at least ${GOAL_SPEEDUP}x faster than conftest: **$v** (${SPEEDUP}x; in CPU time $(ratio "${CPU[conftest]:-0}" "${CPU[stepgate]:-0}")x)"
	USER_SPEEDUP=$(ratio "${BEST[conftest]}" "${BEST[stepgate-user]}")
	v=PASS
	if ! awk -v s="$USER_SPEEDUP" -v g="$GOAL_USER_SPEEDUP" 'BEGIN { exit !(s >= g) }'; then v=FAIL; FAILED=1; fi
	USER_LINE="- with one module of the user's own loaded, at least ${GOAL_USER_SPEEDUP}x faster than conftest: **$v** (${USER_SPEEDUP}x; in CPU time $(ratio "${CPU[conftest]:-0}" "${CPU[stepgate-user]:-0}")x; $(mib "${PEAK[stepgate-user]:-}") MiB)"
	if [[ -n ${PEAK[stepgate]:-} ]]; then
		v=PASS
		if ((PEAK[stepgate] > GOAL_RSS_MIB * 1024)); then v=FAIL; FAILED=1; fi
		RSS_LINE="- stepgate peak RSS at most ${GOAL_RSS_MIB} MiB: **$v** ($(mib "${PEAK[stepgate]}") MiB)"
	else
		RSS_LINE="- stepgate peak RSS at most ${GOAL_RSS_MIB} MiB: **not measured** (no GNU time)"
	fi
fi

if [[ $FAILED == 1 ]]; then
	VERDICT="A goal is not met on this machine (see Goals)."
elif [[ $SKIP_STEPGATE == 1 ]]; then
	VERDICT="stepgate was not measured in this run."
else
	VERDICT="Every goal is met on this machine."
fi

mkdir -p "$(dirname "$BENCH_OUT")"
# The sections other scripts write are kept: "Decision quality"
# (bench/quality/run.sh), then everything from "## The gate server" on
# (bench/run-gate.sh, bench/run-real.sh).
QUALITY_SECTION=""
GATE_SECTIONS=""
if [[ -f $BENCH_OUT ]]; then
	QUALITY_SECTION=$(awk '/^## Decision quality/ { on = 1 } on && /^## / && !/^## Decision quality/ { on = 0 } on' "$BENCH_OUT")
	GATE_SECTIONS=$(awk '/^## The gate server/ { on = 1 } on' "$BENCH_OUT")
fi
{
	cat <<EOF
# Benchmarks

stepgate against conftest and jq on one large Terraform plan. This file is
written by \`bash bench/run.sh\`; run it again to refresh the numbers.

## What is measured

Each tool reads the same plan, the output of \`terraform show -json\` as
written by \`bench/plangen\` (format_version 1.2, Terraform 1.9.5), and is
run $RUNS times, the runs interleaved (one of each tool per round) so that
every tool meets the same load on a shared machine. The table keeps the best
wall time (process start to exit, including reading and parsing the file),
the best CPU time (user + system, GNU time's \`%U\` + \`%S\`: less
sensitive to other work on the machine) and the highest peak resident set
size over the runs (GNU time's \`%M\`). The goals are judged on wall time.

- **stepgate** evaluates its embedded default policy and prints the
  assessment as JSON. Exit codes 3 (step_up) and 4 (deny) count as success.
- **stepgate-user** is the same with one module of the user's own loaded
  (\`--policy\`): the input then carries every attribute of every change.
- **conftest** evaluates \`bench/conftest\`: stepgate's own rules (a copy
  generated from internal/policy/rego) with, in Rego, what stepgate does in
  Go: building the input from the plan document (\`adapter.rego\`) and the
  functions \`stepgate.where\`, \`stepgate.policy_statements\`... 
  (\`functions.rego\`). It exits 1 because deny rules fire; that counts as
  success. The script checks that both report the same findings: the same
  rules, with the same number of addresses and the same first ten.
- **jq** only counts the resource changes whose actions are not
  \`["no-op"]\` (data-source reads included): a floor for any tool that
  parses the whole document, with no policy at all.

## Machine

- CPU: ${CPU:-unknown}, $(nproc 2>/dev/null || echo "?") cores (nproc)
- Memory: ${MEM:-unknown}
- $GOV
- conftest $CONFTEST_V, $CONFTEST_ORIGIN
- $JQV
- stepgate: commit $REV$DIRTY
- Date: $DATE

## Input

- Plan: $CHANGES resource changes (seed $SEED), $PLAN_MB MB ($PLAN_BYTES bytes)
- Changes that are not no-op (jq's count): $JQ_COUNT
- conftest rule hits: ${CONFTEST_HITS:-none}

## Results

| tool | command | best wall (s) | best CPU (s) | peak RSS (MiB) | time vs stepgate |
| --- | --- | ---: | ---: | ---: | --- |
EOF
	if [[ $SKIP_STEPGATE != 1 ]]; then
		row stepgate
		row stepgate-user
	else
		printf '| stepgate | `%s` | not measured | not measured | not measured | (SKIP_STEPGATE=1) |\n' \
			"stepgate eval --plan big.json --workspace $WORKSPACE --output json"
	fi
	row conftest
	row jq
	cat <<EOF

## Goals

$SPEED_LINE
$RSS_LINE
$USER_LINE
- stepgate's and conftest's findings agree: $AGREE

## Where the time and memory go

$VERDICT
Timed inside the process on 2026-12-08 (\`go test ./internal/policy -bench
'Decode|Assess'\`, on this machine while other builds ran): reading the plan
and building the policy input about 0.31 s, evaluating the policy about
0.45-0.7 s. The policy now reads what each change does (identity.escalation,
network.exposure, protection.removed), which multiplied the evaluation time
of 2026-11-30 (0.06-0.09 s); conftest, running the same rules in Rego, grew
far more.

- Reading: the plan is streamed. \`prior_state\`, \`planned_values\` and
  \`configuration\` (about half of the file) are validated (duplicate keys
  are refused everywhere) but skipped without being built; no-ops are
  counted and dropped. The raw bytes are read and hashed (the SHA-256 a
  grant binds) ahead, on a goroutine of their own; values with a sensitive
  marker are masked token by token, values without one are passed on as
  they are; each change becomes policy terms directly from its JSON text on
  a second goroutine while the next one is read. What is left on the
  critical path is mostly JSON tokenizing.
- Content rules: the inbound rules of every firewall shape are read in one
  Go pass (\`stepgate.ingress_openings\`), policy documents are parsed in Go
  (\`stepgate.policy_statements\`), and \`stepgate.having\` leaves the
  document rules only the changes that have a document. In Rego, reading
  the ingress rules alone took a second on this plan.
- Policy: the built-in rules make a dozen passes over the ~13,700 changes.
  In Rego each pass cost 10-90 ms (about 300 ms in all); stepgate's
  built-in functions (\`stepgate.where\`, \`stepgate.distinct\`,
  \`stepgate.tagged\`, \`stepgate.tokens\`, \`stepgate.type_categories\`,
  docs/policy.md "Functions") do them in Go while the Rego still says which
  members, values and types count. Findings are read from the Rego terms
  directly. \`go test ./internal/policy -run '^\$' -bench Rules\` times
  each rule.
- Output: the JSON is streamed (encoding/json's indenting pass alone took
  longer than everything else after evaluation).
- Memory: with only the built-in policy loaded, the input carries only what
  its rules read (docs/policy.md, "The input document"): each change's
  address, type, action, the \`tags\` and \`containers\` derived in Go
  from its tag maps and reference attributes, and of \`before\` /
  \`after\` only the attributes its type's rules read (a resource group's
  name, an SSM parameter's type). About 27 MB of OPA terms for the ~13,700
  changes; loading any module of your own gives the policy every attribute
  again. Tests assess every real plan of the fixtures both ways and require
  the same answer.
- \`stepgate eval\` runs the collector at \`GOGC=50\` unless \`GOGC\` is
  set: the content rules' garbage took the peak from 87 to about 100 MiB at
  the default, for no gain in time.

\`go test ./internal/policy -run '^\$' -bench .\` measures reading and
assessing without process start-up (it generates the plan with plangen, or
reads \`\$STEPGATE_BENCH_PLAN\`).
EOF
	if [[ -n $QUALITY_SECTION ]]; then
		printf '\n%s\n' "$QUALITY_SECTION"
	fi
	if [[ -n $GATE_SECTIONS ]]; then
		printf '\n%s\n' "$GATE_SECTIONS"
	fi
} >"$BENCH_OUT"

say "results (best of $RUNS)"
printf '    %-9s %10s %12s\n' tool "wall (s)" "RSS (MiB)"
for t in stepgate stepgate-user conftest jq; do
	[[ -n ${BEST[$t]:-} ]] || continue
	printf '    %-9s %10s %12s\n' "$t" "${BEST[$t]}" "$(mib "${PEAK[$t]:-}")"
done
SPEED_TXT=${SPEED_LINE#- } RSS_TXT=${RSS_LINE#- } USER_TXT=${USER_LINE#- }
printf '    %s\n' "${SPEED_TXT//\*\*/}" "${RSS_TXT//\*\*/}" "${USER_TXT//\*\*/}"
say "wrote $BENCH_OUT"

if [[ $BENCH_STRICT == 1 && $FAILED == 1 ]]; then
	exit 1
fi
