#!/usr/bin/env bash
# Decision quality: runs the real stepgate binary over every plan of the
# fixtures, before (the code at BEFORE_REF, main by default) and after (the
# working tree), and measures
#
#   - the share of non-production plans with changes that need step-up
#     (goal: at most one in three), and
#   - missed escalations and exposures among the labelled plans of
#     bench/quality/labels.tsv (goal: none).
#
#   bash bench/quality/run.sh            # prints the section, updates docs/benchmarks.md
#
# Environment:
#   FIXTURES=DIR      plans to assess (default testdata/plans)
#   LABELS=FILE       labels (default bench/quality/labels.tsv)
#   BEFORE_REF=REF    the code "before" is built from (default main)
#   BEFORE_BIN=PATH   use this binary as "before" instead of building one
#   WORKSPACE=NAME    the non-production workspace given (default sandbox)
#   SKIP_SHARE=PREFIX plans under this prefix are left out of the share
#                     (default stepgate/, the plans written for the tests)
#   QUALITY_OUT=FILE  where the section is written (default: replaces the
#                     "Decision quality" section of docs/benchmarks.md)
#   QUALITY_STRICT=1  exit 1 when a goal is not met
set -euo pipefail

export LC_ALL=C
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD

FIXTURES=${FIXTURES:-testdata/plans}
LABELS=${LABELS:-bench/quality/labels.tsv}
BEFORE_REF=${BEFORE_REF:-main}
BEFORE_BIN=${BEFORE_BIN:-}
WORKSPACE=${WORKSPACE:-sandbox}
# The plans written for stepgate's own tests (testdata/plans/stepgate) are
# made to be risky: they are checked against the labels but left out of
# the share, which is about plans as they come.
SKIP_SHARE=${SKIP_SHARE-stepgate/}
QUALITY_OUT=${QUALITY_OUT:-}
QUALITY_STRICT=${QUALITY_STRICT:-0}

command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }
[[ -d $FIXTURES ]] || { echo "no fixtures directory $FIXTURES" >&2; exit 1; }
[[ -f $LABELS ]] || { echo "no labels file $LABELS" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/stepgate-quality.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
say() { printf '==> %s\n' "$*" >&2; }

say "building stepgate (after: the working tree)"
go build -o "$TMP/after" ./cmd/stepgate
if [[ -n $BEFORE_BIN ]]; then
	cp "$BEFORE_BIN" "$TMP/before"
	BEFORE_DESC="the binary $BEFORE_BIN"
else
	say "building stepgate (before: $BEFORE_REF, from git archive)"
	rev=$(git rev-parse --short "$BEFORE_REF")
	mkdir -p "$TMP/src"
	git archive "$BEFORE_REF" | tar -x -C "$TMP/src"
	(cd "$TMP/src" && go build -o "$TMP/before" ./cmd/stepgate)
	BEFORE_DESC="$BEFORE_REF at $rev"
fi
AFTER_DESC="commit $(git rev-parse --short HEAD)"
[[ -n $(git status --porcelain -- . ':(exclude)docs/benchmarks.md' 2>/dev/null | head -n 1) ]] && AFTER_DESC+=" with uncommitted changes"

mapfile -t PLANS < <(find "$FIXTURES" -name '*.json' -type f | sort)
say "${#PLANS[@]} plans in $FIXTURES, workspace $WORKSPACE"

# assess BIN PLAN: one line "decision<TAB>production<TAB>changes<TAB>rules"
# (rules: the rules of the findings that ask for step-up or deny, comma
# separated), or "refused" when stepgate does not read the plan (exit 2).
assess() {
	local out rc=0
	out=$("$1" eval --plan "$2" --workspace "$WORKSPACE" --output json 2>/dev/null) || rc=$?
	case $rc in
	0 | 3 | 4)
		jq -r '[.decision, (.summary.production | tostring), (.summary.changes | tostring),
			([.findings[] | .rule] | unique | join(",")),
			([.findings[] | select(.decision != "allow") | .rule] | unique | join(","))] | @tsv' <<<"$out"
		;;
	2) printf 'refused\n' ;;
	*) printf 'error(%s)\n' "$rc" ;;
	esac
}

for bin in before after; do
	: >"$TMP/$bin.tsv"
	for p in "${PLANS[@]}"; do
		printf '%s\t%s\n' "${p#"$FIXTURES"/}" "$(assess "$TMP/$bin" "$p")" >>"$TMP/$bin.tsv"
	done
done

# share BIN: "stepped/total" over non-production plans with changes.
share() {
	awk -F'\t' -v skip="$SKIP_SHARE" '(skip == "" || index($1, skip) != 1) && $2 != "refused" && $3 == "false" && $4 > 0 { n++; if ($2 == "step_up") s++ }
		END { printf "%d/%d", s, n }' "$TMP/$1.tsv"
}
denied() {
	awk -F'\t' -v skip="$SKIP_SHARE" '(skip == "" || index($1, skip) != 1) && $3 == "false" && $4 > 0 && $2 == "deny" { d++ } END { printf "%d", d }' "$TMP/$1.tsv"
}
empty_denied() {
	awk -F'\t' '$2 == "deny" && $4 == 0 { d++ } END { printf "%d", d }' "$TMP/$1.tsv"
}
pct() { awk -v f="$1" 'BEGIN { split(f, a, "/"); if (a[2] > 0) printf "%.0f%%", 100 * a[1] / a[2]; else print "n/a" }'; }

BEFORE_SHARE=$(share before)
AFTER_SHARE=$(share after)

# Labels: plan<TAB>expected rules (comma separated)<TAB>why. A plan is
# missed when a rule it expects is not among the findings after.
MISSED=()
FALSE_ALARMS=()
LABELLED=0
EXPECTED=0
while IFS=$'\t' read -r plan want why; do
	[[ -z $plan || $plan == \#* ]] && continue
	LABELLED=$((LABELLED + 1))
	line=$(awk -F'\t' -v p="$plan" '$1 == p' "$TMP/after.tsv")
	if [[ -z $line ]]; then
		echo "labels: $plan is not among the fixtures" >&2
		exit 1
	fi
	got=$(cut -f5 <<<"$line")
	IFS=, read -ra rules <<<"$want"
	for r in "${rules[@]}"; do
		[[ $r == none ]] && continue
		EXPECTED=$((EXPECTED + 1))
		[[ ",$got," == *",$r,"* ]] || MISSED+=("$plan: $r ($why)")
	done
	if [[ $want == none && ( ",$got," == *",identity.escalation,"* || ",$got," == *",network.exposure,"* ) ]]; then
		FALSE_ALARMS+=("$plan: $got")
	fi
done <"$LABELS"

goal_share=PASS
awk -v f="$AFTER_SHARE" 'BEGIN { split(f, a, "/"); exit !(a[2] > 0 && 3 * a[1] <= a[2]) }' || goal_share=FAIL
goal_missed=PASS
((${#MISSED[@]} == 0)) || goal_missed=FAIL

SECTION=$TMP/section.md
{
	cat <<EOF2
## Decision quality

Written by \`bash bench/quality/run.sh\`: the real \`stepgate eval\`
binary, before and after, over every plan of \`$FIXTURES\` (${#PLANS[@]}
files) with \`--workspace $WORKSPACE\` and the default policy. The share
leaves out the plans under \`${SKIP_SHARE:-(none)}\` (written for stepgate's tests
to be risky); the labels cover them. A plan is
non-production when stepgate finds no production sign in it (tags, names,
containers, stacks); it "needs step-up" when the decision is step_up.

- Before: $BEFORE_DESC. After: $AFTER_DESC. Date: $(date -u +%Y-%m-%dT%H:%M:%SZ).

| | before | after |
| --- | ---: | ---: |
| non-production plans with changes that need step-up | $BEFORE_SHARE ($(pct "$BEFORE_SHARE")) | $AFTER_SHARE ($(pct "$AFTER_SHARE")) |
| of those, denied | $(denied before) | $(denied after) |
| plans with nothing to change that are denied | $(empty_denied before) | $(empty_denied after) |

Labelled plans (\`$LABELS\`, $LABELLED plans, $EXPECTED expected
escalations or exposures): **${#MISSED[@]} missed**; ${#FALSE_ALARMS[@]} of the
plans labelled \`none\` raised one anyway.

- At most one in three non-production plans with changes needs step-up: **$goal_share** ($AFTER_SHARE)
- No labelled escalation or exposure missed: **$goal_missed**
EOF2
	if ((${#MISSED[@]} > 0)); then
		echo
		echo "Missed:"
		echo
		printf -- '- %s\n' "${MISSED[@]}"
	fi
	if ((${#FALSE_ALARMS[@]} > 0)); then
		echo
		echo "Raised on plans labelled none:"
		echo
		printf -- '- %s\n' "${FALSE_ALARMS[@]}"
	fi
	echo
	echo "The decision per plan, before and after, with the rules that asked for step-up or denied, for the non-production plans with changes:"
	echo
	echo '| plan | before | after |'
	echo '| --- | --- | --- |'
	join -t $'\t' <(sort "$TMP/before.tsv") <(sort "$TMP/after.tsv") |
		awk -F'\t' '$8 == "false" && $9 > 0 {
			b = $2; if ($6 != "") b = b " (" $6 ")"
			a = $7; if ($11 != "") a = a " (" $11 ")"
			printf "| %s | %s | %s |\n", $1, b, a }'
} >"$SECTION"

cat "$SECTION"

if [[ -n $QUALITY_OUT ]]; then
	cp "$SECTION" "$QUALITY_OUT"
else
	doc=docs/benchmarks.md
	if [[ -f $doc ]] && grep -q '^## Decision quality' "$doc"; then
		awk -v f="$SECTION" '
			/^## Decision quality/ { while ((getline l < f) > 0) print l; skip = 1; next }
			skip && /^## / { skip = 0 }
			!skip { print }' "$doc" >"$TMP/doc" && cp "$TMP/doc" "$doc"
	else
		{ echo; cat "$SECTION"; } >>"$doc"
	fi
	say "wrote the Decision quality section of $doc"
fi

if [[ $QUALITY_STRICT == 1 && ( $goal_share == FAIL || $goal_missed == FAIL ) ]]; then
	exit 1
fi
