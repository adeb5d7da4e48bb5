# stepgate's default policy (internal/policy/defaults.yaml and
# internal/policy/rego/{lib,builtin}.rego), rewritten for conftest so that
# the benchmark compares like with like:
#
#   conftest test --no-color --policy bench/conftest plan.json
#
# conftest's input is the whole document of `terraform show -json`, not
# stepgate's normalised change list, so these rules walk
# input.resource_changes themselves. The classification lists are the
# Terraform entries of defaults.yaml (its Pulumi type tokens cannot match a
# Terraform plan and are left out). Keep them in step when defaults.yaml
# changes.
#
# conftest has only deny and warn. Every rule that makes stepgate ask for
# step-up or deny is a `deny` here, which makes conftest exit 1. Each
# message starts with the rule id that stepgate reports, then names the
# addresses concerned.
package main

# ---------------------------------------------------------------------------
# Workspace
#
# stepgate gets the workspace from --workspace; conftest has no such flag.
# Pass it as data (`--data DIR` where DIR holds a JSON file with
# {"workspace": "billing-dev"}). Without it, the benchmark's workspace
# "billing-prod" is used (hard-coded).
default workspace := "billing-prod"

workspace := data.workspace if is_string(data.workspace)

# ---------------------------------------------------------------------------
# Configuration: the defaults of stepgate's built-in policy.

env_names := {"prod", "production", "prd", "live"}

# Workspaces that are production whatever their name (glob patterns): none
# by default; `{"prod_workspaces": [...]}` in the --data file sets them.
default prod_workspaces := []

prod_workspaces := data.prod_workspaces if is_array(data.prod_workspaces)

tag_attributes := ["tags", "tags_all", "labels"]

tag_keys := {"environment", "env", "stage", "tier"}

# Container-like types whose own name says what environment they hold.
name_attributes := {
	"azurerm_resource_group": ["name"],
	"azurerm_subscription": ["subscription_name", "alias"],
	"google_project": ["name", "project_id"],
	"google_folder": ["display_name"],
	"aws_organizations_account": ["name"],
	"aws_organizations_organizational_unit": ["name"],
}

# Attributes of any resource that name the container it lives in.
reference_attributes := ["resource_group_name", "project", "scope"]

sensitive_types := {
	"identity": [
		"aws_iam_*",
		"aws_organizations_policy",
		"aws_organizations_policy_attachment",
		"aws_ssoadmin_*",
		"aws_identitystore_*",
		"aws_s3_bucket_policy",
		"aws_s3_bucket_public_access_block",
		"aws_s3_account_public_access_block",
		"aws_lambda_permission",
		"aws_sqs_queue_policy",
		"aws_sns_topic_policy",
		"aws_ecr_repository_policy",
		"aws_kms_grant",
		"google_*_iam_binding",
		"google_*_iam_member",
		"google_*_iam_policy",
		"google_*_iam_audit_config",
		"google_project_iam_custom_role",
		"google_organization_iam_custom_role",
		"google_service_account",
		"google_service_account_key",
		"google_iam_*",
		"google_organization_policy",
		"google_folder_organization_policy",
		"google_project_organization_policy",
		"google_org_policy_*",
		"azurerm_role_assignment",
		"azurerm_role_definition",
		"azurerm_user_assigned_identity",
		"azurerm_federated_identity_credential",
		"azurerm_key_vault_access_policy",
		"azurerm_*policy_assignment",
		"azurerm_policy_definition",
		"azurerm_policy_set_definition",
		"azuread_*",
		"kubernetes_role",
		"kubernetes_role_v1",
		"kubernetes_role_binding",
		"kubernetes_role_binding_v1",
		"kubernetes_cluster_role",
		"kubernetes_cluster_role_v1",
		"kubernetes_cluster_role_binding",
		"kubernetes_cluster_role_binding_v1",
		"kubernetes_service_account",
		"kubernetes_service_account_v1",
	],
	"secrets": [
		"aws_kms_*",
		"aws_secretsmanager_*",
		"aws_acm_certificate",
		"aws_key_pair",
		"google_kms_*",
		"google_secret_manager_*",
		"azurerm_key_vault",
		"azurerm_key_vault_key",
		"azurerm_key_vault_secret",
		"azurerm_key_vault_certificate",
		"azuredevops_variable_group",
		"vault_*",
		"kubernetes_secret",
		"kubernetes_secret_v1",
		"tls_private_key",
		"random_password",
	],
	"network": [
		"aws_security_group",
		"aws_security_group_rule",
		"aws_default_security_group",
		"aws_vpc_security_group_ingress_rule",
		"aws_vpc_security_group_egress_rule",
		"aws_network_acl",
		"aws_network_acl_rule",
		"aws_network_acl_association",
		"aws_default_network_acl",
		"aws_networkfirewall_*",
		"google_compute_firewall",
		"google_compute_firewall_policy*",
		"google_compute_network_firewall_policy*",
		"google_compute_region_network_firewall_policy*",
		"google_compute_security_policy",
		"azurerm_network_security_group",
		"azurerm_network_security_rule",
		"azurerm_subnet_network_security_group_association",
		"azurerm_firewall",
		"azurerm_firewall_*",
		"azurerm_*_firewall_rule",
		"azurerm_web_application_firewall_policy",
		"kubernetes_network_policy",
		"kubernetes_network_policy_v1",
	],
}

category_names := {
	"identity": "identity and access",
	"secrets": "keys and secrets",
	"network": "network boundaries",
}

# A change to these types is sensitive only when an attribute (before or
# after) has one of the values: an SSM parameter is a secret when SecureString.
sensitive_when := {"aws_ssm_parameter": {"type": ["SecureString"]}}

# Types that hold data: deleting or replacing one loses it.
stateful_patterns := [
	"aws_db_instance",
	"aws_rds_cluster",
	"aws_rds_cluster_instance",
	"aws_rds_global_cluster",
	"aws_dynamodb_table",
	"aws_dynamodb_global_table",
	"aws_docdb_cluster",
	"aws_neptune_cluster",
	"aws_redshift_cluster",
	"aws_redshiftserverless_namespace",
	"aws_elasticache_cluster",
	"aws_elasticache_replication_group",
	"aws_elasticache_serverless_cache",
	"aws_memorydb_cluster",
	"aws_opensearch_domain",
	"aws_elasticsearch_domain",
	"aws_keyspaces_table",
	"aws_timestreamwrite_table",
	"aws_s3_bucket",
	"aws_s3_directory_bucket",
	"aws_glacier_vault",
	"aws_backup_vault",
	"aws_ebs_volume",
	"aws_ebs_snapshot",
	"aws_efs_file_system",
	"aws_fsx_*_file_system",
	"aws_sqs_queue",
	"aws_kinesis_stream",
	"aws_kinesis_firehose_delivery_stream",
	"aws_msk_cluster",
	"aws_mq_broker",
	"aws_route53_zone",
	"aws_kms_key",
	"aws_cloudwatch_log_group",
	"aws_ecr_repository",
	"aws_eks_cluster",
	"google_sql_database_instance",
	"google_sql_database",
	"google_alloydb_cluster",
	"google_spanner_instance",
	"google_spanner_database",
	"google_bigtable_instance",
	"google_bigtable_table",
	"google_bigquery_dataset",
	"google_bigquery_table",
	"google_firestore_database",
	"google_storage_bucket",
	"google_compute_disk",
	"google_compute_region_disk",
	"google_compute_snapshot",
	"google_filestore_instance",
	"google_redis_instance",
	"google_memcache_instance",
	"google_pubsub_topic",
	"google_pubsub_subscription",
	"google_dns_managed_zone",
	"google_kms_crypto_key",
	"google_kms_key_ring",
	"google_logging_project_bucket_config",
	"google_container_cluster",
	"azurerm_resource_group",
	"azurerm_mssql_server",
	"azurerm_mssql_database",
	"azurerm_mssql_managed_instance",
	"azurerm_sql_server",
	"azurerm_sql_database",
	"azurerm_postgresql_server",
	"azurerm_postgresql_database",
	"azurerm_postgresql_flexible_server",
	"azurerm_postgresql_flexible_server_database",
	"azurerm_mysql_server",
	"azurerm_mysql_database",
	"azurerm_mysql_flexible_server",
	"azurerm_mysql_flexible_database",
	"azurerm_cosmosdb_*",
	"azurerm_storage_account",
	"azurerm_storage_container",
	"azurerm_storage_share",
	"azurerm_storage_table",
	"azurerm_storage_queue",
	"azurerm_managed_disk",
	"azurerm_snapshot",
	"azurerm_redis_cache",
	"azurerm_servicebus_namespace",
	"azurerm_servicebus_queue",
	"azurerm_servicebus_topic",
	"azurerm_eventhub_namespace",
	"azurerm_eventhub",
	"azurerm_dns_zone",
	"azurerm_private_dns_zone",
	"azurerm_key_vault",
	"azurerm_key_vault_key",
	"azurerm_log_analytics_workspace",
	"azurerm_kubernetes_cluster",
	"azurerm_recovery_services_vault",
	"azurerm_data_protection_backup_vault",
	"kubernetes_persistent_volume",
	"kubernetes_persistent_volume_v1",
	"kubernetes_persistent_volume_claim",
	"kubernetes_persistent_volume_claim_v1",
	"kubernetes_stateful_set",
	"kubernetes_stateful_set_v1",
	"kubernetes_namespace",
	"kubernetes_namespace_v1",
]

max_changes := 50

max_destructive := 10

# ---------------------------------------------------------------------------
# Changes: resource changes whose actions are neither ["no-op"] nor ["read"].
# Kept as indices into input.resource_changes so that the sets stay cheap.

quiet_actions := {["no-op"], ["read"]}

changes contains i if {
	some i, rc in input.resource_changes
	not rc.change.actions in quiet_actions
}

change_addrs := {input.resource_changes[i].address | some i in changes}

# Deletes and replacements (["delete","create"] or ["create","delete"]).
destructive contains i if {
	some i in changes
	"delete" in input.resource_changes[i].change.actions
}

destructive_addrs := {input.resource_changes[i].address | some i in destructive}

# ---------------------------------------------------------------------------
# Production

# tokens splits a name on - _ . / : and white space, in lower case.
tokens(s) := {t | some t in regex.split(`[-_./:\s]+`, lower(s)); t != ""}

# names_production holds when a string has a production token in it:
# "rg-billing-prod" does, "product-catalog" does not.
names_production(s) if {
	is_string(s)
	some t in tokens(s)
	t in env_names
}

production_reasons contains sprintf("workspace %q", [workspace]) if names_production(workspace)

production_reasons contains sprintf("workspace %q matches %q", [workspace, p]) if {
	some p in prod_workspaces
	glob.match(p, null, workspace)
}

# Changed resources tagged or labelled as production.
prod_tagged contains rc.address if {
	some i in changes
	rc := input.resource_changes[i]
	some state in [rc.change.before, rc.change.after]
	some attr in tag_attributes
	tags := state[attr]
	is_object(tags)
	some k, v in tags
	lower(k) in tag_keys
	is_string(v)
	lower(v) in env_names
}

# Changed containers (resource groups, projects...) whose own name says
# production.
prod_named contains rc.address if {
	some i in changes
	rc := input.resource_changes[i]
	attrs := name_attributes[rc.type]
	some state in [rc.change.before, rc.change.after]
	some a in attrs
	names_production(state[a])
}

# Changed resources that live in a production container, by an attribute
# such as resource_group_name or project. Names repeat across resources, so
# each is tested once.
container_names contains v if {
	some i in changes
	rc := input.resource_changes[i]
	some state in [rc.change.before, rc.change.after]
	some a in reference_attributes
	v := state[a]
	is_string(v)
}

production_containers := {v | some v in container_names; names_production(v)}

prod_contained contains rc.address if {
	some i in changes
	rc := input.resource_changes[i]
	some state in [rc.change.before, rc.change.after]
	some a in reference_attributes
	state[a] in production_containers
}

production_reasons contains describe(prod_tagged, "tagged as production")

production_reasons contains describe(prod_named, "named as production")

production_reasons contains describe(prod_contained, "in a production container")

describe(set, what) := sprintf("%s is %s", [min(set), what]) if count(set) == 1

describe(set, what) := sprintf("%d resources are %s, such as %s", [count(set), what, min(set)]) if count(set) > 1

production if count(production_reasons) > 0

# ---------------------------------------------------------------------------
# Classification of the types present in this plan (each pattern is tried
# once per distinct type, not once per change).

plan_types := {input.resource_changes[i].type | some i in changes}

sensitive_categories := {t: cats |
	some t in plan_types
	cats := {cat |
		some cat, patterns in sensitive_types
		some p in patterns
		glob.match(p, null, t)
	}
	count(cats) > 0
}

stateful_types := {t |
	some t in plan_types
	some p in stateful_patterns
	glob.match(p, null, t)
}

is_sensitive(rc) if sensitive_categories[rc.type]

is_sensitive(rc) if {
	conds := sensitive_when[rc.type]
	some state in [rc.change.before, rc.change.after]
	some attr, values in conds
	state[attr] in values
}

categories(rc) := sensitive_categories[rc.type]

categories(rc) := {"secrets"} if {
	not sensitive_categories[rc.type]
	is_sensitive(rc)
}

sensitive contains i if {
	some i in changes
	is_sensitive(input.resource_changes[i])
}

stateful_destroyed contains i if {
	some i in destructive
	input.resource_changes[i].type in stateful_types
}

# ---------------------------------------------------------------------------
# Rules

deny contains msg if {
	production
	n := count(changes)
	n > 0
	msg := sprintf("prod.change: Production (%s): %s would change. Addresses: %s", [
		concat("; ", production_reasons),
		plural(n, "resource", "resources"),
		addr_list(change_addrs),
	])
}

deny contains msg if {
	count(sensitive) > 0
	cats := {cat | some i in sensitive; some cat in categories(input.resource_changes[i])}
	parts := [sprintf("%s (%s)", [object.get(category_names, cat, cat), concat(", ", types)]) |
		some cat in cats
		types := {rc.type | some i in sensitive; rc := input.resource_changes[i]; cat in categories(rc)}
	]
	msg := sprintf("sensitive.change: %s to %s. Addresses: %s", [
		plural(count(sensitive), "change", "changes"),
		concat("; ", parts),
		addr_list({input.resource_changes[i].address | some i in sensitive}),
	])
}

deny contains msg if {
	n := count(stateful_destroyed)
	n > 0
	msg := sprintf("stateful.destroy: %s would be deleted or replaced (%s); %s lost unless backed up. Addresses: %s", [
		plural(n, "stateful resource", "stateful resources"),
		concat(", ", {input.resource_changes[i].type | some i in stateful_destroyed}),
		its_data(n),
		addr_list({input.resource_changes[i].address | some i in stateful_destroyed}),
	])
}

blast_reasons contains sprintf("%d changes at once (more than %d)", [n, max_changes]) if {
	n := count(changes)
	n > max_changes
}

blast_reasons contains sprintf("%d deletes and replaces at once (more than %d)", [n, max_destructive]) if {
	n := count(destructive)
	n > max_destructive
}

deny contains msg if {
	count(blast_reasons) > 0
	msg := sprintf("blast.radius: Large blast radius: %s. Addresses: %s", [
		concat("; ", blast_reasons),
		addr_list(change_addrs),
	])
}

deny contains "plan.errored: The plan errored: the tool could not finish planning, so what it would do is unknown." if {
	input.errored == true
}

deny contains "plan.errored: The plan is not applyable: the tool said it cannot be applied as it is." if {
	not input.errored == true
	input.applyable == false
}

warn contains msg if {
	production
	count(changes) == 0
	msg := sprintf("prod.change: Production (%s), but the plan changes nothing.", [concat("; ", production_reasons)])
}

# ---------------------------------------------------------------------------
# Helpers

plural(n, one, _) := sprintf("%d %s", [n, one]) if n == 1

plural(n, _, many) := sprintf("%d %s", [n, many]) if n != 1

its_data(n) := "its data is" if n == 1

else := "their data is"

# addr_list names up to 10 addresses, sorted, and how many more there are.
addr_list(addrs) := concat(", ", sort(addrs)) if count(addrs) <= 10

addr_list(addrs) := sprintf("%s and %d more", [concat(", ", array.slice(sort(addrs), 0, 10)), count(addrs) - 10]) if {
	count(addrs) > 10
}
