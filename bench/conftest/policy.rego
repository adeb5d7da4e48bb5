# stepgate's default policy run by conftest, so that the benchmark compares
# like with like:
#
#   conftest test --no-color --policy bench/conftest --data bench/conftest/data plan.json
#
# The rules are stepgate's own (stepgate_*.rego, generated from
# internal/policy/rego by `go run ./bench/conftest/gen`, with the default
# configuration as data/stepgate.json). What stepgate does in Go is done in
# Rego here: adapter.rego builds stepgate's input from the plan document,
# and functions.rego holds the pure-Rego versions of stepgate.where,
# stepgate.distinct, stepgate.tagged, stepgate.tokens,
# stepgate.type_categories, stepgate.policy_statements and
# stepgate.port_ranges.
#
# conftest has only deny and warn: a finding that asks for step-up or
# denies is a `deny` (conftest exits 1), an allow finding (sensitive.change
# outside production) a `warn`. Each message starts with the rule id and
# ends with the number of addresses and the first ten, sorted, which
# bench/run.sh compares with stepgate's findings.
package main

import data.stepgate.rules.builtin

deny contains message(f) if {
	some f in builtin.findings
	f.decision != "allow"
}

warn contains message(f) if {
	some f in builtin.findings
	f.decision == "allow"
}

message(f) := sprintf("%s: %s Addresses (%d): %s", [f.rule, f.reason, count(f.addresses), addr_list(f.addresses)])

# addr_list names up to 10 addresses, sorted.
addr_list(addrs) := concat(", ", array.slice(sort(addrs), 0, 10))
