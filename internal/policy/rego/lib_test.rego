# Unit tests of the helpers of data.stepgate.lib that users' rules import.
package stepgate.lib_test

import data.stepgate.lib

test_tokens_split_on_separators_in_lower_case if {
	lib.tokens("Billing-PROD_eu.west/1:a b") == {"billing", "prod", "eu", "west", "1", "a", "b"}
	lib.tokens("--") == set()
}

test_names_production if {
	every s in ["rg-billing-prod", "acme-prod-1234", "Billing Production", "live", "x/prd"] {
		lib.names_production(s)
	}
	every s in ["product-catalog", "preprod", "billing-dev", "", "reproduction"] {
		not lib.names_production(s)
	}
}

test_names_production_ignores_non_strings if {
	not lib.names_production(null)
	not lib.names_production(["prod"])
	not lib.names_production({"env": "prod"})
}

test_changes_are_input_changes_and_destructive_keeps_deletes_and_replaces if {
	inp := {
		"changes": [
			{"address": "a", "type": "t", "action": "create"},
			{"address": "c", "type": "t", "action": "delete"},
			{"address": "d", "type": "t", "action": "replace"},
			{"address": "e", "type": "t", "action": "update"},
		],
		"reads": [{"address": "b", "type": "t", "action": "read"}],
	}
	lib.addresses(lib.changes) == ["a", "c", "d", "e"] with input as inp
	lib.addresses(lib.destructive) == ["c", "d"] with input as inp
}

test_addresses_are_sorted if {
	lib.addresses([{"address": "b"}, {"address": "a"}, {"address": "c"}]) == ["a", "b", "c"]
}

test_is_sensitive_and_stateful_types if {
	inp := {"changes": [
		{"address": "a", "type": "aws_iam_role", "action": "update", "before": {}, "after": {}},
		{"address": "b", "type": "aws_db_instance", "action": "delete", "before": {}, "after": null},
	]}
	lib.is_sensitive({"type": "aws_iam_role", "before": {}, "after": {}}) with input as inp
	not lib.is_sensitive({"type": "aws_db_instance", "before": {}, "after": null}) with input as inp
	lib.stateful_types == {"aws_db_instance"} with input as inp
}

test_context_follows_production if {
	lib.context == "production" with input as {"operation": {"workspace": "", "environment": "prod"}, "changes": []}
	lib.context == "outside_production" with input as {"operation": {"workspace": "", "environment": "dev"}, "changes": []}
}

test_finding_reads_the_configured_requirements if {
	f := lib.finding("secret.read", ["x"], "why") with input as {"operation": {"workspace": "", "environment": ""}, "changes": []}
	f == {
		"rule": "secret.read",
		"decision": "step_up",
		"severity": "high",
		"addresses": ["x"],
		"reason": "why",
		"requirements": {"aal": 3, "approvals": 0, "max_age": 0},
	}
}

test_finding_is_undefined_without_a_context if {
	not lib.finding("prod.change", [], "why") with input as {"operation": {"workspace": "", "environment": ""}, "changes": []}
	not lib.finding("acme.unknown", [], "why") with input as {"operation": {"workspace": "", "environment": "prod"}, "changes": []}
}

test_finding_for_a_rule_configured_by_the_user if {
	ctx := {"decision": "step_up", "aal": 2, "approvals": 1, "max_age": 0, "severity": "medium"}
	f := lib.finding("acme.rule", [], "why") with data.stepgate.config.rules["acme.rule"] as {"enabled": true, "outside_production": ctx}
		with input as {"operation": {"workspace": "", "environment": ""}, "changes": []}
	f.requirements.approvals == 1
}

test_plural if {
	lib.plural(1, "change", "changes") == "1 change"
	lib.plural(0, "change", "changes") == "0 changes"
	lib.plural(2, "change", "changes") == "2 changes"
}

test_type_pattern_star_matches_dots if {
	inp := {"changes": [{"address": "a", "type": "kubernetes:rbac.authorization.k8s.io/v1:Role", "action": "create", "before": null, "after": {}}]}
	lib.stateful_types == {"kubernetes:rbac.authorization.k8s.io/v1:Role"} with input as inp with data.stepgate.config.stateful_types as ["kubernetes:*"]
}
