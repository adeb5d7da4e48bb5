# Unit tests of the built-in policy, run by `go test ./internal/policy -run
# TestBuiltinRego` with the default configuration as data.stepgate.config.
package stepgate.rules.builtin_test

import data.stepgate.lib
import data.stepgate.rules.builtin

# --- Helpers ---------------------------------------------------------------

action_lists := {
	"create": ["create"],
	"update": ["update"],
	"delete": ["delete"],
	"replace": ["delete", "create"],
	"read": ["read"],
	"forget": ["forget"],
	"import": ["no-op"],
}

# states returns [before, after] for an action, both set to attrs where the
# resource exists on that side.
states(action, attrs) := [null, attrs] if action in {"create", "read"}

else := [attrs, null] if action in {"delete", "forget"}

else := [attrs, attrs]

mode_of(action) := "data" if action == "read"

else := "managed"

# change builds one element of input.changes, shaped as internal/policy/input.go
# writes it.
change(addr, typ, action, attrs) := {
	"address": addr,
	"previous_address": "",
	"module_address": "",
	"type": typ,
	"name": "this",
	"index": null,
	"provider": "registry.terraform.io/hashicorp/test",
	"mode": mode_of(action),
	"actions": action_lists[action],
	"action": action,
	"action_reason": "",
	"importing": action == "import",
	"before": states(action, attrs)[0],
	"after": states(action, attrs)[1],
	"after_unknown": [],
	"sensitive_paths": [],
	"replace_paths": [],
	"tags": norm_tags(states(action, attrs)),
	"containers": norm_containers(states(action, attrs)),
	"unknown": [],
	"changed": [],
}

# with_states gives a change different before and after values.
with_states(c, before, after) := object.union(c, {
	"before": before,
	"after": after,
	"tags": norm_tags([before, after]),
	"containers": norm_containers([before, after]),
})

# norm_tags and norm_containers compute the two fields stepgate derives in
# Go (internal/policy/input.go), from the configuration the test runs with.
tag_pairs(sts) := {[lower(k), v] |
	some st in sts
	some attr in data.stepgate.config.production.tag_attributes
	tags := st[attr]
	is_object(tags)
	some k, v in tags
	is_string(v)
}

norm_tags(sts) := {k: [v | some p in pairs; p[0] == k; v := p[1]] |
	pairs := tag_pairs(sts)
	some q in pairs
	k := q[0]
}

norm_containers(sts) := [v |
	some v in {v |
		some st in sts
		some a in data.stepgate.config.production.reference_attributes
		v := st[a]
		is_string(v)
	}
]

# res is a change of a resource named after its type: aws_iam_role.this.
res(typ, action) := change(sprintf("%s.this", [typ]), typ, action, {"id": "x"})

res_with(typ, action, attrs) := change(sprintf("%s.this", [typ]), typ, action, attrs)

# many returns n changes of aws_instance with the given action.
many(n, action) := [change(sprintf("aws_instance.web[%d]", [i]), "aws_instance", action, {"id": "x"}) |
	some i in numbers.range(1, n)
]

plan_ok := {
	"format": "terraform",
	"format_version": "1.2",
	"tool_version": "1.9.5",
	"errored": false,
	"applyable": true,
	"complete": true,
	"sha256": "0000",
	"action_invocations": 0,
}

operation(kind, ws, env, cs, p) := {
	"operation": {"kind": kind, "workspace": ws, "environment": env},
	"plan": p,
	"summary": {"changes": count(cs), "total": count(cs), "by_action": {}},
	# As stepgate builds it: data-source reads apart from the changes.
	"changes": [c | some c in cs; c.action != "read"],
	"reads": [c | some c in cs; c.action == "read"],
}

apply(ws, env, cs) := operation("terraform.apply", ws, env, cs, plan_ok)

dev(cs) := apply("billing-dev", "", cs)

prod(cs) := apply("billing-prod", "", cs)

# findings_of evaluates the built-in rules on an input.
findings_of(inp) := fs if {
	fs := builtin.findings with input as inp
}

rules_of(inp) := {f.rule | some f in findings_of(inp)}

# finding_of is the one finding of a rule (undefined when the rule did not
# fire; a conflict error if it fired twice).
finding_of(inp, rule) := f if {
	some f in findings_of(inp)
	f.rule == rule
}

is_production(inp) if lib.production with input as inp

reasons_of(inp) := rs if {
	rs := lib.production_reasons with input as inp
}

# --- The starter test --------------------------------------------------------

test_dev_change_passes if {
	count(builtin.findings) == 0 with input as {
		"operation": {"kind": "terraform.apply", "workspace": "billing-dev", "environment": ""},
		"plan": {"errored": false, "applyable": true},
		"changes": [change("aws_instance.web", "aws_instance", "update", {})],
	}
}

# --- Production detection: --environment -----------------------------------

test_environment_names_are_production if {
	every env in ["prod", "Production", "PRD", "live", "LIVE", "pRoD"] {
		is_production(apply("", env, [res("aws_instance", "update")]))
	}
}

test_environment_staging_is_not_production if {
	every env in ["staging", "dev", "", "qa"] {
		not is_production(apply("", env, [res("aws_instance", "update")]))
	}
}

test_environment_reason_names_the_value if {
	reasons_of(apply("", "Production", [])) == {`environment "Production"`}
}

# --- Production detection: workspace tokens ---------------------------------

test_workspace_tokens_are_production if {
	every ws in ["billing-prod", "prod_eu", "a.prd", "x/live", "team:production", "PROD", "acme/billing/prod"] {
		is_production(apply(ws, "", [res("aws_instance", "update")]))
	}
}

test_workspace_lookalikes_are_not_production if {
	every ws in ["product-catalog", "preprod", "billing-dev", "reproduce", "prodigy", ""] {
		not is_production(apply(ws, "", [res("aws_instance", "update")]))
	}
}

test_workspace_reason_names_the_workspace if {
	reasons_of(apply("billing-prod", "", [])) == {`workspace "billing-prod"`}
}

test_workspace_patterns_from_config if {
	ws := ["billing-*"]
	is_production(apply("billing-eu", "", [])) with data.stepgate.config.production.workspaces as ws
	not is_production(apply("billing", "", [])) with data.stepgate.config.production.workspaces as ws
	not is_production(apply("team-billing-eu", "", [])) with data.stepgate.config.production.workspaces as ws
	not is_production(apply("billing-eu", "", []))
	reasons_of(apply("billing-eu", "", [])) == {`workspace "billing-eu" matches "billing-*"`} with data.stepgate.config.production.workspaces as ws
}

test_workspace_pattern_star_matches_dots if {
	is_production(apply("billing-eu.west", "", [])) with data.stepgate.config.production.workspaces as ["billing-*"]
}

# --- Production detection: tags and labels ----------------------------------

test_tag_keys_and_values_are_production if {
	every attr in ["tags", "tags_all", "labels"] {
		every key in ["environment", "Env", "STAGE", "tier", "Environment"] {
			every value in ["Production", "prod", "PRD", "live"] {
				is_production(dev([res_with("aws_instance", "update", {attr: {key: value}})]))
			}
		}
	}
}

test_tag_in_before_only_is_production if {
	# The tag is being removed: the resource was production.
	c := with_states(res("aws_instance", "update"), {"tags": {"Environment": "Production"}}, {"tags": {}})
	is_production(dev([c]))
}

test_tag_in_after_only_is_production if {
	is_production(dev([res_with("aws_instance", "create", {"tags": {"Environment": "prod"}})]))
}

test_tag_on_deleted_resource_is_production if {
	is_production(dev([res_with("aws_instance", "delete", {"tags": {"env": "prod"}})]))
}

test_tag_dev_is_not_production if {
	not is_production(dev([res_with("aws_instance", "update", {"tags": {"Environment": "dev"}})]))
}

test_tag_other_key_is_not_production if {
	not is_production(dev([res_with("aws_instance", "update", {"tags": {"Name": "prod", "Owner": "production"}})]))
}

test_tag_other_attribute_is_not_production if {
	not is_production(dev([res_with("aws_instance", "update", {"metadata": {"environment": "prod"}})]))
}

test_tag_reason if {
	reasons_of(dev([res_with("aws_instance", "update", {"tags": {"Environment": "prod"}})])) == {"aws_instance.this is tagged as production"}
}

test_tag_reason_counts_resources if {
	cs := [
		change("aws_instance.b", "aws_instance", "update", {"tags": {"env": "prod"}}),
		change("aws_instance.a", "aws_instance", "update", {"tags": {"env": "prod"}}),
	]
	reasons_of(dev(cs)) == {"2 resources are tagged as production, such as aws_instance.a"}
}

test_tag_on_read_data_source_is_not_production if {
	not is_production(dev([res_with("aws_instance", "read", {"tags": {"Environment": "prod"}})]))
}

# --- Production detection: container names ----------------------------------

test_container_names_are_production if {
	cases := [
		["azurerm_resource_group", {"name": "rg-billing-prod"}],
		["google_project", {"project_id": "acme-prod-1234", "name": "Acme"}],
		["google_project", {"name": "acme prod"}],
		["azurerm_subscription", {"subscription_name": "Billing Production"}],
		["azurerm_subscription", {"alias": "billing-prd"}],
		["google_folder", {"display_name": "live"}],
		["aws_organizations_account", {"name": "billing-prod"}],
		["aws_organizations_organizational_unit", {"name": "Prod"}],
	]
	every case in cases {
		is_production(dev([res_with(case[0], "update", case[1])]))
	}
}

test_container_names_reason if {
	reasons_of(dev([res_with("azurerm_resource_group", "update", {"name": "rg-billing-prod"})])) == {"azurerm_resource_group.this is named rg-billing-prod"}
}

test_non_container_names_are_not_production if {
	every typ in ["aws_instance", "azurerm_storage_account", "aws_s3_bucket", "google_storage_bucket"] {
		not is_production(dev([res_with(typ, "update", {"name": "rg-billing-prod", "project_id": "acme-prod-1234"})]))
	}
}

test_container_other_attribute_is_not_production if {
	not is_production(dev([res_with("azurerm_resource_group", "update", {"name": "rg-billing", "location": "prod"})]))
}

test_container_dev_name_is_not_production if {
	not is_production(dev([res_with("google_project", "update", {"project_id": "acme-dev-1234", "name": "product"})]))
}

test_container_name_attributes_from_config if {
	c := res_with("aws_instance", "update", {"name": "web-prod"})
	not is_production(dev([c]))
	is_production(dev([c])) with data.stepgate.config.production.name_attributes as {"aws_instance": ["name"]}
}

test_container_read_data_source_is_not_production if {
	rg := change("data.azurerm_resource_group.main", "azurerm_resource_group", "read", {"name": "rg-billing-prod"})
	sa := change("azurerm_storage_account.st", "azurerm_storage_account", "update", {"resource_group_name": "rg-billing-dev"})
	not is_production(dev([rg, sa]))
	is_production(dev([object.union(rg, {"action": "update", "mode": "managed"}), sa]))
}

# --- Production detection: reference attributes -----------------------------

test_resource_group_reference_is_production if {
	is_production(dev([res_with("azurerm_storage_account", "update", {"name": "stbilling", "resource_group_name": "rg-billing-prod"})]))
}

test_google_project_reference_is_production if {
	is_production(dev([res_with("google_storage_bucket", "create", {"name": "b", "project": "acme-prod-1234"})]))
}

test_role_assignment_scope_reference_is_production if {
	scope := "/subscriptions/0000/resourceGroups/rg-billing-prod"
	is_production(dev([res_with("azurerm_role_assignment", "create", {"scope": scope, "role_definition_name": "Reader"})]))
	not is_production(dev([res_with("azurerm_role_assignment", "create", {"scope": "/subscriptions/0000/resourceGroups/rg-billing-dev"})]))
}

test_reference_reason if {
	reasons_of(dev([res_with("google_storage_bucket", "create", {"project": "acme-prod-1234"})])) == {"google_storage_bucket.this is in a production container"}
}

test_dev_references_are_not_production if {
	not is_production(dev([res_with("azurerm_storage_account", "update", {"resource_group_name": "rg-billing-dev", "project": "product-catalog"})]))
}

# --- prod.change ---------------------------------------------------------------

test_prod_change_requirements if {
	f := finding_of(prod([res("aws_instance", "update")]), "prod.change")
	f.decision == "step_up"
	f.severity == "medium"
	f.requirements == {"aal": 2, "approvals": 0, "max_age": 0}
	f.addresses == ["aws_instance.this"]
}

test_prod_change_reason if {
	f := finding_of(prod([res("aws_instance", "update"), res("aws_s3_bucket", "create")]), "prod.change")
	f.reason == `Production (workspace "billing-prod"): 2 resources would change.`
}

test_prod_change_addresses_are_sorted_and_skip_reads if {
	cs := [
		change("aws_instance.b", "aws_instance", "update", {}),
		change("data.aws_ami.x", "aws_ami", "read", {}),
		change("aws_instance.a", "aws_instance", "create", {}),
	]
	finding_of(prod(cs), "prod.change").addresses == ["aws_instance.a", "aws_instance.b"]
}

test_prod_change_does_not_fire_outside_production if {
	not "prod.change" in rules_of(dev([res("aws_instance", "update")]))
	not "prod.change" in rules_of(apply("billing", "staging", [res("aws_instance", "update")]))
}

test_prod_change_needs_a_change if {
	count(findings_of(prod([]))) == 0
}

test_prod_change_read_only_does_not_count if {
	count(findings_of(prod([res("aws_ami", "read")]))) == 0
}

test_prod_change_every_signal if {
	every inp in [
		apply("billing", "live", [res("aws_instance", "update")]),
		apply("billing", "", [res_with("aws_instance", "update", {"tags": {"Environment": "Production"}})]),
		apply("billing", "", [res_with("azurerm_resource_group", "update", {"name": "rg-billing-prod"})]),
		apply("billing", "", [res_with("azurerm_storage_account", "update", {"resource_group_name": "rg-billing-prod"})]),
	] {
		"prod.change" in rules_of(inp)
	}
}

# The motivating example: the workspace says nothing, the resource group's
# name does.
test_prod_resource_group_tag_update_in_neutral_workspace if {
	rg := change("azurerm_resource_group.billing", "azurerm_resource_group", "update", {"name": "rg-billing-prod", "location": "westeurope"})
	c := with_states(rg, {"name": "rg-billing-prod", "tags": {"owner": "a"}}, {"name": "rg-billing-prod", "tags": {"owner": "b"}})
	fs := findings_of(apply("billing", "", [c]))
	{f.rule | some f in fs} == {"prod.change"}
	some f in fs
	f.addresses == ["azurerm_resource_group.billing"]
	contains(f.reason, "azurerm_resource_group.billing is named rg-billing-prod")
}

test_dev_instance_tag_change_has_no_finding if {
	c := with_states(res("aws_instance", "update"), {"tags": {"owner": "a"}}, {"tags": {"owner": "b"}})
	count(findings_of(apply("billing-dev", "", [c]))) == 0
}

test_no_changes_in_dev_has_no_finding if {
	count(findings_of(dev([]))) == 0
}

# --- sensitive.change -----------------------------------------------------------

test_sensitive_identity_types if {
	every typ in ["aws_iam_role", "google_project_iam_member", "azurerm_role_assignment", "kubernetes_cluster_role_binding", "azuread_application"] {
		f := finding_of(dev([res(typ, "update")]), "sensitive.change")
		f.addresses == [sprintf("%s.this", [typ])]
		f.reason == sprintf("1 change to identity and access (%s): %s.this is updated.", [typ, typ])
	}
}

test_sensitive_secret_types if {
	every typ in ["aws_kms_key", "aws_secretsmanager_secret", "azurerm_key_vault_secret", "kubernetes_secret", "random_password", "tls_private_key", "vault_generic_secret"] {
		f := finding_of(dev([res(typ, "create")]), "sensitive.change")
		f.reason == sprintf("1 change to keys and secrets (%s): %s.this is created.", [typ, typ])
	}
}

test_sensitive_network_types if {
	every typ in ["aws_security_group_rule", "google_compute_firewall", "azurerm_network_security_rule", "kubernetes_network_policy"] {
		f := finding_of(dev([res(typ, "delete")]), "sensitive.change")
		f.reason == sprintf("1 change to network boundaries (%s): %s.this is deleted.", [typ, typ])
	}
}

test_sensitive_pulumi_tokens if {
	cases := {
		"aws:iam/role:Role": "identity and access",
		"kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding": "identity and access",
		"aws:secretsmanager/secret:Secret": "keys and secrets",
		"kubernetes:core/v1:Secret": "keys and secrets",
		"aws:ec2/securityGroup:SecurityGroup": "network boundaries",
	}
	every typ, cat in cases {
		f := finding_of(dev([change("urn:pulumi:dev::app::x", typ, "update", {})]), "sensitive.change")
		f.reason == sprintf("1 change to %s (%s): urn:pulumi:dev::app::x is updated.", [cat, typ])
	}
}

test_sensitive_pulumi_gcp_iam_tokens if {
	every typ in ["gcp:projects/iAMMember:IAMMember", "gcp:serviceaccount/iAMBinding:IAMBinding", "gcp:storage/bucketIAMMember:BucketIAMMember", "gcp:secretmanager/secretIamMember:SecretIamMember"] {
		"sensitive.change" in rules_of(dev([change("urn:pulumi:dev::app::x", typ, "create", {})]))
	}
}

test_ordinary_types_are_not_sensitive if {
	every typ in ["aws_instance", "aws_s3_bucket", "google_compute_instance", "aws_iamrole", "kubernetes_deployment", "aws:ec2/instance:Instance"] {
		count(findings_of(dev([res(typ, "update")]))) == 0
	}
}

test_sensitive_data_source_read_does_not_fire if {
	count(findings_of(dev([res("aws_iam_policy_document", "read")]))) == 0
}

test_sensitive_reads_are_not_counted if {
	cs := [
		change("aws_iam_role.app", "aws_iam_role", "update", {}),
		change("data.aws_iam_role.ci", "aws_iam_role", "read", {}),
	]
	f := finding_of(dev(cs), "sensitive.change")
	f.addresses == ["aws_iam_role.app"]
	f.reason == "1 change to identity and access (aws_iam_role): aws_iam_role.app is updated."
}

test_ssm_secure_string_is_sensitive if {
	f := finding_of(dev([res_with("aws_ssm_parameter", "create", {"type": "SecureString", "value": "(sensitive value)"})]), "sensitive.change")
	f.reason == "1 change to keys and secrets (aws_ssm_parameter): aws_ssm_parameter.this is created."
}

test_ssm_secure_string_before_only_is_sensitive if {
	c := object.union(res("aws_ssm_parameter", "update"), {"before": {"type": "SecureString"}, "after": {"type": "String"}})
	"sensitive.change" in rules_of(dev([c]))
}

test_ssm_pulumi_secure_string_is_sensitive if {
	"sensitive.change" in rules_of(dev([change("urn:pulumi:dev::app::p", "aws:ssm/parameter:Parameter", "create", {"type": "SecureString"})]))
}

test_ssm_string_is_not_sensitive if {
	count(findings_of(dev([res_with("aws_ssm_parameter", "create", {"type": "String", "value": "x"})]))) == 0
	count(findings_of(dev([res_with("aws_ssm_parameter", "update", {"type": "StringList"})]))) == 0
}

# Outside production a change to a sensitive type that is not an
# escalation, an exposure or a safeguard removed is allowed, and said.
test_sensitive_outside_production_is_allowed_with_info if {
	f := finding_of(dev([res("aws_iam_role", "update")]), "sensitive.change")
	f.decision == "allow"
	f.severity == "info"
}

test_sensitive_production_requirements if {
	f := finding_of(prod([res("aws_iam_role", "update")]), "sensitive.change")
	f.decision == "step_up"
	f.severity == "critical"
	f.requirements == {"aal": 3, "approvals": 1, "max_age": 0}
}

test_sensitive_reason_names_categories_and_types if {
	cs := [
		res("aws_iam_role", "update"),
		res("aws_iam_policy", "update"),
		res("aws_kms_key", "create"),
		res("aws_security_group", "update"),
		res("aws_instance", "update"),
	]
	f := finding_of(dev(cs), "sensitive.change")
	startswith(f.reason, "4 changes to ")
	contains(f.reason, "identity and access (aws_iam_policy, aws_iam_role)")
	contains(f.reason, "keys and secrets (aws_kms_key)")
	contains(f.reason, "network boundaries (aws_security_group)")
	f.addresses == ["aws_iam_policy.this", "aws_iam_role.this", "aws_kms_key.this", "aws_security_group.this"]
}

test_sensitive_custom_types_from_config if {
	types := object.union(data.stepgate.config.sensitive_types, {"custom": ["acme_*"]})
	f := finding_of(dev([res("acme_vault_door", "update")]), "sensitive.change") with data.stepgate.config.sensitive_types as types
	f.reason == "1 change to sensitive types from your configuration (acme_vault_door): acme_vault_door.this is updated."
	count(findings_of(dev([res("acme_vault_door", "update")]))) == 0
}

test_sensitive_types_removed_by_config if {
	types := {"identity": [], "secrets": [], "network": []}
	count(findings_of(dev([res("aws_iam_role", "update")]))) == 1
	count(findings_of(dev([res("aws_iam_role", "update")]))) == 0 with data.stepgate.config.sensitive_types as types
}

# --- stateful.destroy --------------------------------------------------------------

test_stateful_delete_and_replace_fire if {
	every typ in ["aws_db_instance", "google_sql_database_instance", "azurerm_storage_account", "aws_s3_bucket", "aws:rds/instance:Instance"] {
		every action in ["delete", "replace"] {
			f := finding_of(dev([res(typ, action)]), "stateful.destroy")
			f.addresses == [sprintf("%s.this", [typ])]
		}
	}
}

test_stateful_create_and_update_do_not_fire if {
	every typ in ["aws_db_instance", "google_sql_database_instance", "azurerm_storage_account", "aws_s3_bucket"] {
		every action in ["create", "update", "forget", "import"] {
			not "stateful.destroy" in rules_of(dev([res(typ, action)]))
		}
	}
}

test_stateless_delete_does_not_fire if {
	count(findings_of(dev([res("aws_instance", "delete"), res("aws_lambda_function", "replace")]))) == 0
}

test_stateful_outside_production_requirements if {
	f := finding_of(dev([res("aws_db_instance", "delete")]), "stateful.destroy")
	f.decision == "step_up"
	f.severity == "high"
	f.requirements == {"aal": 2, "approvals": 0, "max_age": 0}
}

test_stateful_production_requirements if {
	f := finding_of(prod([res("aws_db_instance", "replace")]), "stateful.destroy")
	f.severity == "critical"
	f.requirements == {"aal": 3, "approvals": 1, "max_age": 0}
}

test_stateful_reason_and_addresses if {
	cs := [
		change("aws_s3_bucket.logs", "aws_s3_bucket", "delete", {}),
		change("aws_db_instance.main", "aws_db_instance", "replace", {}),
		change("aws_s3_bucket.assets", "aws_s3_bucket", "update", {}),
		change("aws_instance.web", "aws_instance", "delete", {}),
	]
	f := finding_of(dev(cs), "stateful.destroy")
	f.addresses == ["aws_db_instance.main", "aws_s3_bucket.logs"]
	f.reason == "2 stateful resources would be deleted or replaced (aws_db_instance, aws_s3_bucket); their data is lost unless backed up."
}

test_stateful_types_from_config if {
	not "stateful.destroy" in rules_of(dev([res("aws_instance", "delete")]))
	"stateful.destroy" in rules_of(dev([res("aws_instance", "delete")])) with data.stepgate.config.stateful_types as ["aws_inst*"]
	not "stateful.destroy" in rules_of(dev([res("aws_db_instance", "delete")])) with data.stepgate.config.stateful_types as ["aws_inst*"]
}

# --- blast.radius -----------------------------------------------------------------

test_blast_radius_50_changes_do_not_fire if {
	count(findings_of(dev(many(50, "update")))) == 0
}

test_blast_radius_51_changes_fire if {
	f := finding_of(dev(many(51, "update")), "blast.radius")
	f.reason == "Large blast radius: 51 changes at once (more than 50)."
	count(f.addresses) == 51
}

test_blast_radius_10_destructive_do_not_fire if {
	count(findings_of(dev(array.concat(many(5, "delete"), [change(sprintf("aws_instance.r[%d]", [i]), "aws_instance", "replace", {}) | some i in numbers.range(1, 5)])))) == 0
}

test_blast_radius_11_destructive_fire if {
	cs := array.concat(many(6, "delete"), [change(sprintf("aws_instance.r[%d]", [i]), "aws_instance", "replace", {}) | some i in numbers.range(1, 5)])
	f := finding_of(dev(cs), "blast.radius")
	f.reason == "Large blast radius: 11 deletes and replaces at once (more than 10)."
}

test_blast_radius_both_reasons if {
	cs := array.concat(many(40, "update"), [change(sprintf("aws_instance.d[%d]", [i]), "aws_instance", "delete", {}) | some i in numbers.range(1, 12)])
	f := finding_of(dev(cs), "blast.radius")
	contains(f.reason, "52 changes at once (more than 50)")
	contains(f.reason, "12 deletes and replaces at once (more than 10)")
}

test_blast_radius_reads_are_not_counted if {
	cs := array.concat(many(50, "update"), [change(sprintf("data.aws_ami.a[%d]", [i]), "aws_ami", "read", {}) | some i in numbers.range(1, 20)])
	count(findings_of(dev(cs))) == 0
}

test_blast_radius_thresholds_from_config if {
	f := finding_of(dev(many(6, "update")), "blast.radius") with data.stepgate.config.blast_radius.max_changes as 5
	f.reason == "Large blast radius: 6 changes at once (more than 5)."
	not "blast.radius" in rules_of(dev(many(5, "update"))) with data.stepgate.config.blast_radius.max_changes as 5
	"blast.radius" in rules_of(dev(many(2, "delete"))) with data.stepgate.config.blast_radius.max_destructive as 1
}

test_blast_radius_outside_production_requirements if {
	f := finding_of(dev(many(51, "create")), "blast.radius")
	f.severity == "high"
	f.requirements == {"aal": 2, "approvals": 0, "max_age": 0}
}

test_blast_radius_production_requirements if {
	f := finding_of(prod(many(51, "create")), "blast.radius")
	f.decision == "step_up"
	f.severity == "critical"
	f.requirements == {"aal": 3, "approvals": 2, "max_age": 0}
}

# --- plan.errored -------------------------------------------------------------------

test_errored_plan_is_denied if {
	inp := operation("terraform.apply", "billing-dev", "", [], object.union(plan_ok, {"errored": true}))
	f := finding_of(inp, "plan.errored")
	f.decision == "deny"
	f.severity == "critical"
	startswith(f.reason, "The plan errored")
}

test_unapplyable_plan_is_denied if {
	inp := operation("terraform.apply", "billing-dev", "", [res("aws_instance", "update")], object.union(plan_ok, {"applyable": false}))
	f := finding_of(inp, "plan.errored")
	f.decision == "deny"
	startswith(f.reason, "The plan is not applyable")
}

# Terraform 1.8+ writes applyable false for a plan with nothing to change.
test_unapplyable_empty_plan_is_allowed if {
	inp := operation("terraform.apply", "billing-dev", "", [], object.union(plan_ok, {"applyable": false}))
	count(findings_of(inp)) == 0
}

test_errored_and_unapplyable_give_one_finding if {
	inp := operation("terraform.apply", "billing-prod", "", [], object.union(plan_ok, {"errored": true, "applyable": false}))
	count([f | some f in findings_of(inp); f.rule == "plan.errored"]) == 1
	startswith(finding_of(inp, "plan.errored").reason, "The plan errored")
}

test_errored_plan_is_denied_in_production if {
	inp := operation("terraform.apply", "billing-prod", "", [res("aws_instance", "update")], object.union(plan_ok, {"errored": true}))
	finding_of(inp, "plan.errored").decision == "deny"
	rules_of(inp) == {"plan.errored", "prod.change"}
}

test_complete_applyable_plan_is_not_denied if {
	not "plan.errored" in rules_of(operation("terraform.apply", "billing-dev", "", [], object.union(plan_ok, {"complete": false})))
}

# --- secret.read --------------------------------------------------------------------

test_secret_read_outside_production if {
	f := finding_of(operation("secret.read", "billing-dev", "", [], plan_ok), "secret.read")
	f.decision == "step_up"
	f.severity == "high"
	f.addresses == []
	f.requirements == {"aal": 3, "approvals": 0, "max_age": 0}
}

test_secret_read_in_production if {
	inp := operation("secret.read", "billing-prod", "", [], plan_ok)
	f := finding_of(inp, "secret.read")
	f.severity == "critical"
	f.requirements == {"aal": 3, "approvals": 1, "max_age": 0}
	rules_of(inp) == {"secret.read"}
}

test_secret_read_only_for_its_kind if {
	every kind in ["terraform.apply", "tofu.apply", "pulumi.up", "command"] {
		not "secret.read" in rules_of(operation(kind, "billing-prod", "", [], plan_ok))
	}
}

# --- Configuration overrides of rules ------------------------------------------------

test_rule_production_override if {
	ctx := {"decision": "step_up", "aal": 3, "approvals": 2, "max_age": 120, "severity": "high"}
	f := finding_of(prod([res("aws_instance", "update")]), "prod.change") with data.stepgate.config.rules["prod.change"].production as ctx
	f.severity == "high"
	f.requirements == {"aal": 3, "approvals": 2, "max_age": 120}
}

test_rule_production_override_deny if {
	f := finding_of(prod([res("aws_instance", "update")]), "prod.change") with data.stepgate.config.rules["prod.change"].production as {"decision": "deny", "severity": "critical"}
	f.decision == "deny"
}

# prod.change is about production: a context outside production changes
# nothing, the rule itself only fires in production.
test_prod_change_outside_production_context_is_ignored if {
	inp := dev([res("aws_instance", "update")])
	ctx := {"decision": "step_up", "aal": 1, "approvals": 0, "max_age": 0, "severity": "low"}
	count(findings_of(inp)) == 0 with data.stepgate.config.rules["prod.change"].outside_production as ctx
	f := finding_of(prod([res("aws_instance", "update")]), "prod.change") with data.stepgate.config.rules["prod.change"].outside_production as ctx
	f.requirements.aal == 2
}

test_rule_context_can_be_raised_outside_production if {
	ctx := {"decision": "step_up", "aal": 3, "approvals": 1, "max_age": 600, "severity": "critical"}
	f := finding_of(dev([res("aws_db_instance", "delete")]), "stateful.destroy") with data.stepgate.config.rules["stateful.destroy"].outside_production as ctx
	f.requirements == {"aal": 3, "approvals": 1, "max_age": 600}
}

# A context the configuration does not set (`production: off` in
# stepgate.yaml) never fires. The whole config is replaced: `with` on a path
# inside it merges objects into the default instead of replacing them.
test_rule_without_context_does_not_fire if {
	inp := prod([res("aws_iam_role", "update")])
	"sensitive.change" in rules_of(inp)
	cfg := json.remove(data.stepgate.config, ["rules/sensitive.change/production"])
	not "sensitive.change" in rules_of(inp) with data.stepgate.config as cfg
	"prod.change" in rules_of(inp) with data.stepgate.config as cfg
	"sensitive.change" in rules_of(dev([res("aws_iam_role", "update")])) with data.stepgate.config as cfg
}

test_unknown_rule_has_no_finding if {
	not lib.finding("acme.unknown", [], "r") with input as dev([])
}

# --- Several rules at once -------------------------------------------------------------

test_production_iam_database_destroy if {
	cs := [res("aws_iam_role", "update"), res("aws_db_instance", "delete"), res("aws_instance", "update")]
	inp := apply("payments", "production", cs)
	rules_of(inp) == {"prod.change", "sensitive.change", "stateful.destroy"}
	finding_of(inp, "prod.change").addresses == ["aws_db_instance.this", "aws_iam_role.this", "aws_instance.this"]
	finding_of(inp, "prod.change").reason == `Production (environment "production"): 3 resources would change.`
}

# --- secrets named by an operation -------------------------------------------------

with_secrets(inp, secrets) := object.union(inp, {"operation": object.union(inp.operation, {"secrets": secrets})})

test_secret_read_names_the_secrets if {
	inp := with_secrets(operation("secret.read", "billing-dev", "", [], plan_ok), [{"name": "billing/db", "workspace": "billing-*"}])
	f := finding_of(inp, "secret.read")
	f.reason == "Releases 1 secret to the pipeline: billing/db."
	f.requirements == {"aal": 3, "approvals": 0, "max_age": 0}
}

test_apply_with_secrets_also_reads_them if {
	inp := with_secrets(operation("terraform.apply", "billing-prod", "", [], plan_ok), [{"name": "billing/db", "workspace": "billing-*"}, {"name": "billing/api", "workspace": "*"}])
	f := finding_of(inp, "secret.read")
	f.reason == "Releases 2 secrets to the pipeline: billing/db, billing/api."
	f.requirements == {"aal": 3, "approvals": 1, "max_age": 0}
}

test_secret_requirements_per_pattern if {
	inp := with_secrets(operation("secret.read", "billing-dev", "", [], plan_ok), [{"name": "billing/db-main", "workspace": "billing-*"}, {"name": "billing/api", "workspace": "*"}])
	rule := {"aal": 3, "approvals": 2, "groups": ["dba"], "decision": "step_up", "severity": "critical", "max_age": 0}
	fs := [f | some f in findings_of(inp); f.rule == "secret.requirements"] with data.stepgate.config.secrets as {"billing/db-*": rule}
	count(fs) == 1
	fs[0].requirements == {"aal": 3, "approvals": 2, "max_age": 0, "groups": ["dba"]}
	fs[0].reason == "Secret billing/db-main matches policy.secrets[\"billing/db-*\"], which asks for aal 3 and 2 approvals from group dba."
}

test_secret_requirements_star_crosses_slashes if {
	inp := with_secrets(operation("secret.read", "billing-dev", "", [], plan_ok), [{"name": "billing/x/y", "workspace": "*"}])
	fs := [f | some f in findings_of(inp); f.rule == "secret.requirements"] with data.stepgate.config.secrets as {"billing/*": {"aal": 2, "approvals": 0}}
	count(fs) == 1
	fs[0].reason == "Secret billing/x/y matches policy.secrets[\"billing/*\"], which asks for aal 2 and 0 approvals."
}

# --- What a change does --------------------------------------------------------------

iam_doc(action, resource) := json.marshal({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]})

test_wide_grant_escalates_outside_production if {
	f := finding_of(dev([res_with("aws_iam_role_policy", "create", {"policy": iam_doc("*", "*")})]), "identity.escalation")
	f.decision == "step_up"
	f.requirements.aal == 2
	f.reason == "Escalation: aws_iam_role_policy.this allows * on *."
	not "sensitive.change" in rules_of(dev([res_with("aws_iam_role_policy", "create", {"policy": iam_doc("*", "*")})]))
}

test_scoped_grant_is_allowed_outside_production if {
	inp := dev([res_with("aws_iam_role_policy", "create", {"policy": iam_doc(["s3:GetObject"], "arn:aws:s3:::uploads/*")})])
	rules_of(inp) == {"sensitive.change"}
	finding_of(inp, "sensitive.change").decision == "allow"
}

test_wide_grant_in_production_needs_aal3_and_an_approval if {
	f := finding_of(prod([res_with("aws_iam_role_policy", "create", {"policy": iam_doc("iam:PassRole", "*")})]), "identity.escalation")
	f.requirements == {"aal": 3, "approvals": 1, "max_age": 0}
}

# A plan that writes a before value into a create must not make a new
# grant look old.
test_create_with_forged_before_still_escalates if {
	doc := iam_doc("*", "*")
	c := with_states(res("aws_iam_policy", "create"), {"policy": doc}, {"policy": doc})
	"identity.escalation" in rules_of(dev([c]))
}

test_unchanged_wide_grant_is_not_new if {
	doc := iam_doc("*", "*")
	c := with_states(res("aws_iam_policy", "update"), {"policy": doc, "description": "a"}, {"policy": doc, "description": "b"})
	not "identity.escalation" in rules_of(dev([c]))
}

test_policy_known_only_after_apply_escalates if {
	c := object.union(res_with("aws_iam_policy", "create", {"name": "p"}), {"unknown": ["policy"]})
	f := finding_of(dev([c]), "identity.escalation")
	contains(f.reason, "known only after apply (policy)")
}

test_unreadable_policy_escalates if {
	f := finding_of(dev([res_with("aws_iam_policy", "create", {"policy": "{not json"})]), "identity.escalation")
	contains(f.reason, "cannot read")
}

sg_rule(port) := res_with("aws_security_group_rule", "create", {"type": "ingress", "protocol": "tcp", "from_port": port, "to_port": port, "cidr_blocks": ["0.0.0.0/0"]})

test_ssh_from_anywhere_is_exposure_https_is_not if {
	finding_of(dev([sg_rule(22)]), "network.exposure").reason == "Exposure: aws_security_group_rule.this opens 22/tcp to 0.0.0.0/0."
	not "network.exposure" in rules_of(dev([sg_rule(443)]))
}

test_protection_turned_off if {
	c := with_states(res("aws_db_instance", "update"), {"deletion_protection": true}, {"deletion_protection": false})
	c2 := object.union(c, {"changed": ["deletion_protection"]})
	f := finding_of(dev([c2]), "protection.removed")
	f.reason == "Safeguard removed: aws_db_instance.this turns off deletion protection (deletion_protection: true to false)."
}

test_helpers_do_not_count_in_blast_radius if {
	helpers := [change(sprintf("null_resource.t[%d]", [i]), "null_resource", "replace", {"id": "x"}) | some i in numbers.range(1, 60)]
	not "blast.radius" in rules_of(dev(helpers))
	"blast.radius" in rules_of(dev(array.concat(helpers, many(51, "update"))))
}

test_tag_value_tokens_are_production if {
	inp := apply("shop", "", [res_with("aws_instance", "update", {"tags": {"Environment": "prod-eu"}})])
	"prod.change" in rules_of(inp)
	not "prod.change" in rules_of(apply("shop", "", [res_with("aws_instance", "update", {"tags": {"Environment": "preprod"}})]))
}

# --- Context rules -----------------------------------------------------------
# input.pipeline, input.time and input.history are set by stepgate (see
# docs/policy.md, "The context"); a test sets them with object.union.

with_context(inp, ctx) := object.union(inp, ctx)

gh_pipeline(ref, protected) := {
	"system": "github-actions", "repository": "acme/infra", "ref": ref,
	"ref_protected": protected, "event_name": "push", "pull_request": false,
}

one_change := [change("aws_instance.web", "aws_instance", "update", {})]

test_untrusted_ref_denies_unprotected_feature_branch if {
	f := finding_of(with_context(prod(one_change), {"pipeline": gh_pipeline("refs/heads/feature-x", false)}), "pipeline.untrusted_ref")
	f.decision == "deny"
}

test_untrusted_ref_passes_protected_main if {
	not "pipeline.untrusted_ref" in rules_of(with_context(prod(one_change), {"pipeline": gh_pipeline("refs/heads/main", true)}))
}

test_untrusted_ref_never_reads_unverified_claims if {
	inp := with_context(prod(one_change), {"pipeline": null, "pipeline_unverified": {"ref": "refs/heads/feature-x", "event_name": "pull_request"}})
	not "pipeline.untrusted_ref" in rules_of(inp)
}

test_release_refs if {
	inp := with_context(prod(one_change), {"pipeline": gh_pipeline("refs/heads/hotfix", true)})
	f := finding_of(inp, "pipeline.untrusted_ref") with data.stepgate.config.pipeline.release_refs as ["refs/heads/main"]
	contains(f.reason, "release_refs")
}

test_freeze_window_steps_up if {
	inp := with_context(dev(one_change), {"time": {"windows": ["weekend"]}})
	windows := [{"name": "weekend", "weekly": {"from": "Fri 16:00", "to": "Mon 08:00"}}]
	f := finding_of(inp, "change.freeze") with data.stepgate.config.freeze as {"approvers": "cab", "windows": windows}
	f.decision == "step_up"
	f.requirements.groups == ["cab"]
}

test_no_freeze_outside_windows if {
	inp := with_context(dev(one_change), {"time": {"windows": []}})
	not "change.freeze" in rules_of(inp)
}

test_first_time_in_production if {
	inp := with_context(prod(one_change), {"requester": {"kind": "ci", "name": "github:acme"}, "history": {"requester_applied": false}})
	"requester.first_time" in rules_of(inp)
}

test_not_first_time if {
	inp := with_context(prod(one_change), {"requester": {"kind": "ci", "name": "github:acme"}, "history": {"requester_applied": true}})
	not "requester.first_time" in rules_of(inp)
}
