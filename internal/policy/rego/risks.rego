# stepgate built-in rules that read what a change does (package
# annotations are in builtin.rego):
#   identity.escalation, network.exposure and protection.removed: each
#   reads the values of a change before and after (policy documents,
#   ingress rules, public access settings, safeguards) and reports only
#   what the change makes new. Tuned by the `identity`, `network`,
#   `protections` and `safeguard_types` sections of the configuration.
package stepgate.rules.builtin

import data.stepgate.lib

# ---------------------------------------------------------------------------
# Reasons: each finding lists what was found, one sentence per item, the
# first few in full.

max_items := 6

describe_items(items) := concat("; ", texts) if {
	all := sort(items)
	count(all) <= max_items
	texts := all
}

describe_items(items) := sprintf("%s; and %d more", [concat("; ", array.slice(all, 0, max_items)), count(all) - max_items]) if {
	all := sort(items)
	count(all) > max_items
}

# state(c, side): before or after, as an object ({} for null). A create
# has nothing before, whatever the plan says: a before value written into
# a create must not make a new grant look old.
state(c, side) := {} if {
	side == "before"
	c.action == "create"
} else := s if {
	s := c[side]
	is_object(s)
} else := {}

# as_list: a value as a list (a single value is a list of one; null and a
# missing value are empty).
as_list(v) := v if is_array(v)

else := [x | some x in v] if is_set(v)

else := [] if v == null

else := [v]

# attr(s, names): the first of the names that s has, or null.
attr(s, names) := v if {
	some n in names
	v := s[n]
	v != null
} else := null

# blocks(s, name): the blocks of a nested attribute (a list of objects, or
# one object).
blocks(s, name) := [b | some b in as_list(object.get(s, name, [])); is_object(b)]

# risk_changes: the changes of the types the rules below read, selected
# in one pass over every change; each rule then selects its own types from
# these few.
# content_types: the types whose values the rules below read, as far as
# they do not depend on the plan, and content_type_patterns the patterns of
# those that do. Without a module of yours, stepgate keeps the attributes
# these rules read (contentAttributes in internal/policy/input.go) only in
# the values of changes of these types.
content_types := {t |
	some ts in [
		policy_doc_types,
		attachment_types,
		credential_types,
		azure_assignment_types,
		{"azurerm_role_definition"},
		{"azuread_directory_role_assignment", "azuread_directory_role_member", "azuread_directory_role_eligibility_schedule_request"},
		{"google_project_iam_custom_role", "google_organization_iam_custom_role"},
		k8s_role_types,
		k8s_binding_types,
		{"kubernetes_config_map", "kubernetes_config_map_v1", "kubernetes_config_map_v1_data", "kubernetes:core/v1:ConfigMap"},
		{"aws_eks_access_entry", "aws:eks/accessEntry:AccessEntry"},
		{"oci_identity_policy"},
		admin_values,
		{"vault_policy"},
		{"aws_security_group", "aws_default_security_group", "aws:ec2/securityGroup:SecurityGroup"},
		{"aws_security_group_rule", "aws:ec2/securityGroupRule:SecurityGroupRule"},
		{"aws_vpc_security_group_ingress_rule", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"},
		{"azurerm_network_security_rule", "azurerm_network_security_group"},
		{"google_compute_firewall", "gcp:compute/firewall:Firewall"},
		{"oci_core_security_list", "oci_core_default_security_list"},
		{"oci_core_network_security_group_security_rule"},
		{"yandex_vpc_security_group", "yandex_vpc_default_security_group", "yandex_vpc_security_group_rule"},
		{"digitalocean_firewall"},
		{"hcloud_firewall"},
		{"linode_firewall"},
		{"alicloud_security_group_rule"},
		{"aws_db_instance", "aws_rds_cluster_instance", "aws_redshift_cluster", "aws_dms_replication_instance", "aws_docdb_cluster_instance", "aws_neptune_cluster_instance", "aws:rds/instance:Instance", "aws:rds/clusterInstance:ClusterInstance"},
		{"mongodbatlas_project_ip_access_list"},
		{"google_sql_database_instance"},
		{"aws_s3_bucket_acl", "aws_s3_bucket", "aws:s3/bucketAclV2:BucketAclV2", "aws:s3/bucket:Bucket", "google_storage_bucket_acl", "google_storage_default_object_acl"},
		public_block_types,
		{"azurerm_storage_container"},
		{"azurerm_storage_account"},
		{"aws_lambda_function_url"},
		{"aws_lambda_permission", "aws:lambda/permission:Permission"},
		lib.cfg.safeguard_types,
	]
	some t in type_names(ts)
}

content_type_patterns := {
	"google_*_iam_member", "google_*_iam_binding", "google_*_iam_policy",
	"yandex_*_iam_member", "yandex_*_iam_binding", "yandex_*_iam_policy",
	"gcp:*", "azurerm_*_firewall_rule",
}

risk_types := content_types | role_binding_types | azure_firewall_rule_types

type_names(ts) := {t | some t, _ in ts} if is_object(ts)

else := {t | some t in ts}

risk_changes := stepgate.where(lib.changes, "type", risk_types)

# ---------------------------------------------------------------------------
# identity.escalation

# Actions of these services on every resource are power over identity,
# keys and secrets (iam:PassRole among them).
power_prefixes := {"iam:", "sts:", "organizations:", "kms:", "secretsmanager:", "ssm:getparameter", "ram:", "sso:", "identitystore:"}

# Managed policies that grant administrative power when attached.
admin_policies := {"AdministratorAccess", "PowerUserAccess", "IAMFullAccess", "AliyunRAMFullAccess", "AmazonEKSClusterAdminPolicy", "AmazonEKSAdminPolicy"}

# Condition keys that keep a resource policy with principal * from being
# public: the caller must be in an organisation, account, VPC...
restricting_conditions := {
	"aws:principalorgid", "aws:principalorgpaths", "aws:principalaccount", "aws:principalarn",
	"aws:sourcevpc", "aws:sourcevpce", "aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid",
	"aws:sourceorgpaths", "aws:sourceip", "aws:userid", "aws:username", "kms:calleraccount",
	"kms:viaservice", "aws:principalservicename", "aws:resourceorgid", "aws:resourceaccount",
}

# Identity policy documents: attribute names by type.
identity_policy_types := {
	"aws_iam_policy": ["policy"],
	"aws_iam_role_policy": ["policy"],
	"aws_iam_user_policy": ["policy"],
	"aws_iam_group_policy": ["policy"],
	"aws_ssoadmin_permission_set_inline_policy": ["inline_policy"],
	"alicloud_ram_policy": ["policy_document", "document"],
	"aws:iam/policy:Policy": ["policy"],
	"aws:iam/rolePolicy:RolePolicy": ["policy"],
	"aws:iam/userPolicy:UserPolicy": ["policy"],
	"aws:iam/groupPolicy:GroupPolicy": ["policy"],
}

# Resource policies: attribute names by type.
resource_policy_types := {
	"aws_s3_bucket_policy": ["policy"],
	"aws_s3_bucket": ["policy"],
	"aws_sqs_queue_policy": ["policy"],
	"aws_sqs_queue": ["policy"],
	"aws_sns_topic_policy": ["policy"],
	"aws_sns_topic": ["policy"],
	"aws_kms_key": ["policy"],
	"aws_kms_key_policy": ["policy"],
	"aws_secretsmanager_secret_policy": ["policy"],
	"aws_secretsmanager_secret": ["policy"],
	"aws_ecr_repository_policy": ["policy"],
	"aws_ecr_registry_policy": ["policy"],
	"aws_glacier_vault": ["access_policy"],
	"aws_opensearch_domain_policy": ["access_policies"],
	"aws_elasticsearch_domain_policy": ["access_policies"],
	"aws_api_gateway_rest_api_policy": ["policy"],
	"aws_backup_vault_policy": ["policy"],
	"aws_efs_file_system_policy": ["policy"],
	"aws_glue_resource_policy": ["policy"],
	"aws_cloudwatch_log_resource_policy": ["policy_document"],
	"aws_s3control_bucket_policy": ["policy"],
	"aws:s3/bucketPolicy:BucketPolicy": ["policy"],
	"aws:sqs/queuePolicy:QueuePolicy": ["policy"],
	"aws:sns/topicPolicy:TopicPolicy": ["policy"],
}

# Trust policies: attribute names by type.
trust_policy_types := {
	"aws_iam_role": ["assume_role_policy"],
	"alicloud_ram_role": ["assume_role_policy_document", "document"],
	"aws:iam/role:Role": ["assumeRolePolicy"],
}

policy_doc_types := object.union(object.union(identity_policy_types, resource_policy_types), trust_policy_types)

# The changes with a policy document: most buckets, queues and keys have
# none, and stepgate.having leaves them out in one pass.
policy_attrs := {a | some attrs in [identity_policy_types, resource_policy_types, trust_policy_types]; some _, names in attrs; some a in names} | {"inline_policy"}

policy_changes := stepgate.having(stepgate.where(risk_changes, "type", policy_doc_types), policy_attrs)

broad_action(a) if a == "*"

broad_action(a) if endswith(a, ":*")

power_action(a) if {
	some p in power_prefixes
	startswith(lower(a), p)
}

# every_resource: the statement applies to every resource.
every_resource(s) if "*" in s.resources

every_resource(s) if s.not_resource

# wide_grants(s): what an Allow statement grants that counts, as text.
wide_grants(s) := {g |
	s.effect == "allow"
	every_resource(s)
	some g in wide_actions(s)
}

wide_actions(s) := {sprintf("everything except %s", [concat(", ", s.action_names)])} if s.not_action

wide_actions(s) := {a | some a in s.action_names; broad_action(a)} | {a | some a in s.action_names; power_action(a)} if not s.not_action

# grant_text: "s3:* on *".
grant_text(s) := sprintf("%s on %s", [actions_text(s), resources_text(s)])

actions_text(s) := sprintf("everything except %s", [concat(", ", s.action_names)]) if s.not_action

else := concat(", ", s.action_names)

resources_text(s) := sprintf("everything except %s", [concat(", ", s.resources)]) if s.not_resource

else := concat(", ", s.resources)

# documents(c, side): the policy documents of a change, parsed.
documents(c, side, attrs) := [d |
	some a in attrs
	v := state(c, side)[a]
	is_string(v)
	v != ""
	d := stepgate.policy_statements(v)
]

# identity_docs: the aws_iam_role inline policies count as identity
# policies.
identity_documents(c, side) := documents(c, side, identity_policy_types[c.type])

identity_documents(c, side) := [d |
	some b in blocks(state(c, side), "inline_policy")
	is_string(b.policy)
	b.policy != ""
	d := stepgate.policy_statements(b.policy)
] if c.type == "aws_iam_role"

allowed_summary(docs) := concat("; ", [grant_text(s) |
	some d in docs
	d != null
	some s in d
	s.effect == "allow"
])

was(c, docs_before) := sprintf(" (was %s)", [sum]) if {
	c.action != "create"
	sum := allowed_summary(docs_before)
	sum != ""
} else := ""

escalations contains [c.address, sprintf("%s allows %s on %s%s", [c.address, concat(", ", sort(gs)), resources_text(s), was(c, identity_documents(c, "before"))])] if {
	some c in policy_changes
	identity_policy_holder(c.type)
	some d in identity_documents(c, "after")
	d != null
	some s in d
	gs := {g | some g in wide_grants(s); not granted_before(c, g)}
	count(gs) > 0
}

identity_policy_holder(t) if identity_policy_types[t]

identity_policy_holder("aws_iam_role")

granted_before(c, g) if {
	some d in identity_documents(c, "before")
	d != null
	some s in d
	g in wide_grants(s)
}

# Resource policies grant wide actions to anyone only with principal *.
escalations contains [c.address, sprintf("%s allows %s on %s to any principal", [c.address, concat(", ", sort(gs)), resources_text(s)])] if {
	some c in policy_changes
	attrs := resource_policy_types[c.type]
	some d in documents(c, "after", attrs)
	d != null
	some s in d
	"*" in s.principals
	gs := {g | some g in wide_grants(s); not resource_granted_before(c, attrs, g)}
	count(gs) > 0
}

resource_granted_before(c, attrs, g) if {
	some d in documents(c, "before", attrs)
	d != null
	some s in d
	"*" in s.principals
	g in wide_grants(s)
}

# A policy document that cannot be read, or is known only after apply.
escalations contains [c.address, sprintf("%s has a policy document stepgate cannot read", [c.address])] if {
	some c in policy_changes
	not resource_policy_types[c.type]
	attrs := object.get(identity_policy_types, c.type, object.get(trust_policy_types, c.type, []))
	some d in documents(c, "after", attrs)
	d == null
}

escalations contains [c.address, sprintf("%s has a policy document known only after apply (%s)", [c.address, a])] if {
	some c in policy_changes
	not resource_policy_types[c.type]
	attrs := array.concat(object.get(identity_policy_types, c.type, []), object.get(trust_policy_types, c.type, []))
	some a in attrs
	a in c.unknown
	c.type != "aws_iam_role"
}

escalations contains [c.address, sprintf("%s has a policy document known only after apply (%s)", [c.address, a])] if {
	some c in policy_changes
	c.type == "aws_iam_role"
	some a in ["assume_role_policy"]
	a in c.unknown
}

# Trust policies: who may assume the role.
trusts(c, side) := {t |
	some d in documents(c, side, trust_policy_types[c.type])
	d != null
	some s in d
	s.effect == "allow"
	some t in trust_texts(s)
}

trust_texts(s) := {"anyone (principal *)" | "*" in s.principals} | {sprintf("account %s", [acct]) |
	some p in s.principals
	startswith(p, "AWS:")
	acct := account_of(substring(p, 4, -1))
	not acct in lib.cfg.identity.trusted_accounts
} | {"any GitHub Actions workflow (no sub condition)" |
	some p in s.principals
	startswith(p, "Federated:")
	contains(p, "token.actions.githubusercontent.com")
	not github_sub_condition(s)
}

github_sub_condition(s) if {
	some k in s.condition_keys
	endswith(k, ":sub")
}

account_of(p) := p if regex.match(`^[0-9]{12}$`, p)

account_of(p) := parts[4] if {
	parts := split(p, ":")
	count(parts) >= 5
	regex.match(`^[0-9]{12}$`, parts[4])
}

escalations contains [c.address, sprintf("%s can be assumed by %s", [c.address, t])] if {
	some c in policy_changes
	trust_policy_types[c.type]
	some t in trusts(c, "after") - trusts(c, "before")
}

# Managed policies that make an administrator.
attachment_arn_attrs := ["policy_arn", "policyArn", "managed_policy_arn", "policy_name"]

attachment_types := {
	"aws_iam_role_policy_attachment", "aws_iam_user_policy_attachment", "aws_iam_group_policy_attachment",
	"aws_iam_policy_attachment", "aws_ssoadmin_managed_policy_attachment", "aws_eks_access_policy_association",
	"alicloud_ram_role_policy_attachment", "alicloud_ram_user_policy_attachment", "alicloud_ram_group_policy_attachment",
	"aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:iam/userPolicyAttachment:UserPolicyAttachment",
	"aws:iam/groupPolicyAttachment:GroupPolicyAttachment", "aws:iam/policyAttachment:PolicyAttachment",
	"aws:eks/accessPolicyAssociation:AccessPolicyAssociation", "aws_iam_role", "aws:iam/role:Role",
}

policy_name_of(arn) := name if {
	parts := split(arn, "/")
	name := parts[count(parts) - 1]
}

attached(c, side) := {n |
	s := state(c, side)
	some a in array.concat(attachment_arn_attrs, ["managed_policy_arns", "managedPolicyArns"])
	some v in as_list(object.get(s, a, null))
	is_string(v)
	n := policy_name_of(v)
	n in admin_policies
}

attachment_changes := stepgate.having(stepgate.where(risk_changes, "type", attachment_types), array.concat(attachment_arn_attrs, ["managed_policy_arns", "managedPolicyArns"]))

escalations contains [c.address, sprintf("%s attaches %s", [c.address, n])] if {
	some c in attachment_changes
	some n in attached(c, "after") - attached(c, "before")
}

# aws_iam_role's managed_policy_arns and inline_policy are computed when
# the configuration leaves them out: unknown there says nothing.
escalations contains [c.address, sprintf("%s has a policy attachment known only after apply", [c.address])] if {
	some c in attachment_changes
	c.action in {"create", "update", "replace"}
	some a in ["policy_arn", "policyArn", "managed_policy_arn"]
	a in c.unknown
}

# New long-lived credentials.
credential_types := {
	"aws_iam_access_key": "an access key",
	"aws_iam_user_login_profile": "a console password (login profile)",
	"aws_iam_service_specific_credential": "a service-specific credential",
	"aws_iam_signing_certificate": "a signing certificate",
	"google_service_account_key": "a service account key",
	"azuread_application_password": "an application password",
	"azuread_service_principal_password": "a service principal password",
	"azuread_application_certificate": "an application certificate",
	"azuread_service_principal_certificate": "a service principal certificate",
	"alicloud_ram_access_key": "an access key",
	"alicloud_ram_login_profile": "a console password (login profile)",
	"oci_identity_api_key": "an API key",
	"oci_identity_auth_token": "an auth token",
	"oci_identity_customer_secret_key": "a customer secret key",
	"yandex_iam_service_account_key": "a service account key",
	"yandex_iam_service_account_static_access_key": "a static access key",
	"yandex_iam_service_account_api_key": "an API key",
	"aws:iam/accessKey:AccessKey": "an access key",
	"aws:iam/userLoginProfile:UserLoginProfile": "a console password (login profile)",
	"gcp:serviceaccount/key:Key": "a service account key",
}

escalations contains [c.address, sprintf("%s creates %s", [c.address, credential_types[c.type]])] if {
	some c in stepgate.where(risk_changes, "type", credential_types)
	c.action in {"create", "replace"}
}

# Azure: built-in roles of administrative power (names and ids), custom
# roles with every action.
azure_admin_roles := {"owner", "contributor", "user access administrator", "role based access control administrator"}

azure_admin_role_ids := {
	"8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
	"b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
	"18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
	"f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
}

azure_roles(c, side) := {r |
	s := state(c, side)
	n := attr(s, ["role_definition_name", "roleDefinitionName"])
	is_string(n)
	lower(n) in azure_admin_roles
	r := n
} | {r |
	s := state(c, side)
	id := attr(s, ["role_definition_id", "roleDefinitionId"])
	is_string(id)
	some guid, r in azure_admin_role_ids
	endswith(lower(id), guid)
}

azure_assignment_types := {"azurerm_role_assignment", "azurerm_pim_active_role_assignment", "azurerm_pim_eligible_role_assignment", "azure:authorization/assignment:Assignment", "azure-native:authorization:RoleAssignment"}

escalations contains [c.address, sprintf("%s assigns %s", [c.address, r])] if {
	some c in stepgate.where(risk_changes, "type", azure_assignment_types)
	some r in azure_roles(c, "after") - azure_roles(c, "before")
}

escalations contains [c.address, sprintf("%s assigns a role known only after apply", [c.address])] if {
	some c in stepgate.where(risk_changes, "type", azure_assignment_types)
	c.action != "delete"
	"role_definition_id" in c.unknown
	attr(state(c, "after"), ["role_definition_name"]) == null
}

escalations contains [c.address, sprintf("%s defines a role with every action (*)", [c.address])] if {
	some c in stepgate.where(risk_changes, "type", {"azurerm_role_definition"})
	some p in blocks(state(c, "after"), "permissions")
	"*" in as_list(object.get(p, "actions", []))
	not azure_star_before(c)
}

azure_star_before(c) if {
	some p in blocks(state(c, "before"), "permissions")
	"*" in as_list(object.get(p, "actions", []))
}

# Entra ID directory roles are administrative roles.
escalations contains [c.address, sprintf("%s assigns a directory role", [c.address])] if {
	some c in stepgate.where(risk_changes, "type", {"azuread_directory_role_assignment", "azuread_directory_role_member", "azuread_directory_role_eligibility_schedule_request"})
	c.action in {"create", "update", "replace"}
}

# Google Cloud and Yandex: privileged roles and public members.
privileged_role(r) if r in {"roles/owner", "roles/editor", "admin", "editor", "resource-manager.admin"}

privileged_role(r) if startswith(r, "roles/iam.")

privileged_role(r) if endswith(lower(r), "admin")

public_members := {"allUsers", "allAuthenticatedUsers", "system:allUsers", "system:allAuthenticatedUsers"}

role_grants(c, side) := {[r, m] |
	s := state(c, side)
	r := attr(s, ["role"])
	is_string(r)
	some m in array.concat(as_list(attr(s, ["member"])), as_list(attr(s, ["members"])))
	is_string(m)
} | {[b.role, m] |
	s := state(c, side)
	pd := attr(s, ["policy_data", "policyData"])
	is_string(pd)
	d := stepgate.policy_statements(pd)
	d != null
	some b in d
	is_string(b.role)
	some m in b.members
}

role_binding_types := {t | some t in lib.plan_types; role_binding_type(t)}

role_binding_type(t) if regex.match(`^(google|yandex)_.*_iam_(member|binding|policy)$`, t)

role_binding_type(t) if regex.match(`^gcp:.*/(iAMMember|iAMBinding|iAMPolicy|IAMMember|IAMBinding|IAMPolicy).*$`, t)

escalations contains [c.address, text] if {
	some c in stepgate.where(risk_changes, "type", role_binding_types)
	some g in role_grants(c, "after") - role_grants(c, "before")
	text := grant_escalation(c.address, g[0], g[1])
}

grant_escalation(addr, r, m) := sprintf("%s grants %s to %s", [addr, r, m]) if m in public_members

else := sprintf("%s grants %s to %s", [addr, r, m]) if privileged_role(r)

escalations contains [c.address, sprintf("%s has an IAM policy known only after apply", [c.address])] if {
	some c in stepgate.where(risk_changes, "type", role_binding_types)
	some a in ["policy_data", "role"]
	a in c.unknown
}

# Google custom roles with permissions that administer identity.
escalating_permission(p) if endswith(p, ".setIamPolicy")

escalating_permission(p) if p in {
	"iam.serviceAccounts.actAs", "iam.serviceAccounts.getAccessToken", "iam.serviceAccounts.implicitDelegation",
	"iam.serviceAccounts.signBlob", "iam.serviceAccounts.signJwt", "iam.serviceAccountKeys.create",
	"iam.roles.create", "iam.roles.update", "deploymentmanager.deployments.create",
}

escalations contains [c.address, sprintf("%s grants %s", [c.address, p])] if {
	some c in stepgate.where(risk_changes, "type", {"google_project_iam_custom_role", "google_organization_iam_custom_role"})
	some p in as_list(object.get(state(c, "after"), "permissions", []))
	escalating_permission(p)
	not p in as_list(object.get(state(c, "before"), "permissions", []))
}

# Kubernetes RBAC.
k8s_role_types := {"kubernetes_cluster_role", "kubernetes_cluster_role_v1", "kubernetes_role", "kubernetes_role_v1", "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "kubernetes:rbac.authorization.k8s.io/v1:Role"}

k8s_binding_types := {"kubernetes_cluster_role_binding", "kubernetes_cluster_role_binding_v1", "kubernetes_role_binding", "kubernetes_role_binding_v1", "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"}

k8s_escalating_verbs := {"*", "escalate", "bind", "impersonate"}

k8s_rules(c, side) := {sprintf("verbs %s on resources %s", [concat(", ", verbs), concat(", ", res)]) |
	s := state(c, side)
	some r in array.concat(blocks(s, "rule"), blocks(s, "rules"))
	verbs := as_list(object.get(r, "verbs", []))
	res := as_list(object.get(r, "resources", []))
	k8s_wide(verbs, res)
}

k8s_wide(verbs, _) if {
	some v in verbs
	v in k8s_escalating_verbs
}

k8s_wide(_, res) if "*" in res

escalations contains [c.address, sprintf("%s allows %s", [c.address, r])] if {
	some c in stepgate.where(risk_changes, "type", k8s_role_types)
	some r in k8s_rules(c, "after") - k8s_rules(c, "before")
}

k8s_bindings(c, side) := {sprintf("binds %s", [n]) |
	s := state(c, side)
	some rr in array.concat(blocks(s, "role_ref"), blocks(s, "roleRef"))
	n := object.get(rr, "name", "")
	n in {"cluster-admin", "admin"}
} | {sprintf("binds %s", [n]) |
	s := state(c, side)
	some sub in array.concat(blocks(s, "subject"), blocks(s, "subjects"))
	n := object.get(sub, "name", "")
	n == "system:masters"
}

escalations contains [c.address, sprintf("%s %s", [c.address, b])] if {
	some c in stepgate.where(risk_changes, "type", k8s_binding_types)
	some b in k8s_bindings(c, "after") - k8s_bindings(c, "before")
}

# The aws-auth ConfigMap says who administers an EKS cluster.
escalations contains [c.address, sprintf("%s changes the aws-auth ConfigMap (who administers the EKS cluster)", [c.address])] if {
	some c in stepgate.where(risk_changes, "type", {"kubernetes_config_map", "kubernetes_config_map_v1", "kubernetes_config_map_v1_data", "kubernetes:core/v1:ConfigMap"})
	some side in ["before", "after"]
	some md in blocks(state(c, side), "metadata")
	object.get(md, "name", "") == "aws-auth"
}

escalations contains [c.address, sprintf("%s maps to the Kubernetes group system:masters", [c.address])] if {
	some c in stepgate.where(risk_changes, "type", {"aws_eks_access_entry", "aws:eks/accessEntry:AccessEntry"})
	"system:masters" in as_list(object.get(state(c, "after"), "kubernetes_groups", []))
}

# OCI policies: statements in OCI's policy language.
oci_escalating(st) if regex.match(`(?i)\bmanage\s+all-resources\b`, st)

oci_escalating(st) if regex.match(`(?i)\b(manage|use)\s+(policies|groups|users|dynamic-groups|domains|identity-family|tenancies)\b`, st)

oci_escalating(st) if regex.match(`(?i)^\s*allow\s+any-user\b`, st)

escalations contains [c.address, sprintf("%s allows %q", [c.address, st])] if {
	some c in stepgate.where(risk_changes, "type", {"oci_identity_policy"})
	some st in as_list(object.get(state(c, "after"), "statements", []))
	is_string(st)
	oci_escalating(st)
	not st in as_list(object.get(state(c, "before"), "statements", []))
}

# SaaS administrators: Okta, GitHub, GitLab, Snowflake, Databricks,
# MongoDB Atlas, Aiven, HCP Terraform, Vault.
admin_values := {
	"okta_group_role": {"role_type": {"SUPER_ADMIN", "ORG_ADMIN", "APP_ADMIN", "USER_ADMIN", "GROUP_MEMBERSHIP_ADMIN", "HELP_DESK_ADMIN", "API_ACCESS_MANAGEMENT_ADMIN", "MOBILE_ADMIN", "REPORT_ADMIN", "READ_ONLY_ADMIN", "CUSTOM"}},
	"okta_user_admin_roles": {"admin_roles": {"*"}},
	"okta_admin_role_custom_assignments": {"members": {"*"}},
	"github_membership": {"role": {"admin"}},
	"github_team_membership": {"role": {"maintainer"}},
	"github_repository_collaborator": {"permission": {"admin"}},
	"github_team_repository": {"permission": {"admin"}},
	"gitlab_group_membership": {"access_level": {"owner"}},
	"gitlab_project_membership": {"access_level": {"owner"}},
	"gitlab_personal_access_token": {"scopes": {"sudo", "admin_mode"}},
	"snowflake_grant_account_role": {"role_name": {"ACCOUNTADMIN", "SECURITYADMIN", "USERADMIN", "ORGADMIN", "SYSADMIN"}},
	"snowflake_role_grants": {"role_name": {"ACCOUNTADMIN", "SECURITYADMIN", "USERADMIN", "ORGADMIN", "SYSADMIN"}},
	"snowflake_grant_privileges_to_account_role": {"all_privileges": {true}, "privileges": {"MANAGE GRANTS", "OWNERSHIP", "CREATE ROLE", "CREATE USER"}},
	"snowflake_grant_ownership": {"account_role_name": {"*"}},
	"databricks_grants": {"grant": {"ALL_PRIVILEGES", "MANAGE"}},
	"databricks_grant": {"privileges": {"ALL_PRIVILEGES", "MANAGE"}},
	"databricks_user_role": {"role": {"account_admin"}},
	"databricks_group_role": {"role": {"account_admin"}},
	"databricks_service_principal_role": {"role": {"account_admin"}},
	"databricks_user": {"allow_cluster_create": {"admin-never"}},
	"mongodbatlas_database_user": {"roles": {"atlasAdmin", "dbAdminAnyDatabase", "userAdminAnyDatabase", "readWriteAnyDatabase", "root", "clusterAdmin"}},
	"aiven_organization_permission": {"permissions": {"admin", "role:organization:admin", "organization:permissions:write", "organization:users:write", "organization:groups:write"}},
	"aiven_organization_group_project": {"role": {"admin"}},
	"tfe_team_access": {"access": {"admin"}},
	"tfe_team_project_access": {"access": {"admin", "maintain"}},
}

# values_of: the plain values of an attribute, and for lists of blocks the
# values of their members (databricks grant blocks, Atlas roles).
values_of(s, a) := {v |
	some x in as_list(object.get(s, a, null))
	some v in flatten_value(x)
}

flatten_value(x) := {x} if not is_object(x)

flatten_value(x) := {v |
	some _, y in x
	some v in as_list(y)
	not is_object(v)
} if is_object(x)

admin_grants(c, side) := {sprintf("%s %v", [a, v]) |
	s := state(c, side)
	some a, wanted in admin_values[c.type]
	some v in values_of(s, a)
	admin_value(v, wanted)
}

admin_value(_, wanted) if "*" in wanted

admin_value(v, wanted) if v in wanted

admin_value(v, wanted) if {
	is_string(v)
	upper(v) in wanted
}

escalations contains [c.address, sprintf("%s grants administrative power (%s)", [c.address, g])] if {
	some c in stepgate.where(risk_changes, "type", admin_values)
	c.action != "delete"
	some g in admin_grants(c, "after") - admin_grants(c, "before")
}

escalations contains [c.address, sprintf("%s grants every path or sudo", [c.address])] if {
	some c in stepgate.where(risk_changes, "type", {"vault_policy"})
	p := object.get(state(c, "after"), "policy", "")
	is_string(p)
	regex.match(`path\s+"(\*|sys/\*|sys/.*|auth/\*)"|"sudo"`, p)
	p != object.get(state(c, "before"), "policy", "")
}

findings contains f if {
	count(escalations) > 0
	addrs := sort({a | some [a, _] in escalations})
	f := lib.finding("identity.escalation", addrs, sprintf("Escalation: %s.", [describe_items({t | some [_, t] in escalations})]))
}

# ---------------------------------------------------------------------------
# network.exposure

public_sources := {"0.0.0.0/0", "::/0", "*", "internet", "any", "0.0.0.0", "0.0.0.0/00"}

public_source(s) if lower(s) in public_sources

# The firewalls and security groups whose inbound rules are read, by
# stepgate.ingress_openings: each provider's shape of a rule, before and
# after, in one pass (see docs/policy.md, Functions).
ingress_types := {
	"aws_security_group", "aws_default_security_group", "aws:ec2/securityGroup:SecurityGroup",
	"aws_security_group_rule", "aws:ec2/securityGroupRule:SecurityGroupRule",
	"aws_vpc_security_group_ingress_rule", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
	"azurerm_network_security_rule", "azurerm_network_security_group",
	"google_compute_firewall", "gcp:compute/firewall:Firewall",
	"oci_core_security_list", "oci_core_default_security_list", "oci_core_network_security_group_security_rule",
	"yandex_vpc_security_group", "yandex_vpc_default_security_group", "yandex_vpc_security_group_rule",
	"digitalocean_firewall", "hcloud_firewall", "linode_firewall", "alicloud_security_group_rule",
}

exposures contains pair if {
	some pair in stepgate.ingress_openings(stepgate.where(risk_changes, "type", ingress_types), public_sources, lib.cfg.network.public_ports)
}

# Databases open to the internet.
exposures contains [c.address, sprintf("%s becomes publicly accessible", [c.address])] if {
	some c in stepgate.where(risk_changes, "type", {"aws_db_instance", "aws_rds_cluster_instance", "aws_redshift_cluster", "aws_dms_replication_instance", "aws_docdb_cluster_instance", "aws_neptune_cluster_instance", "aws:rds/instance:Instance", "aws:rds/clusterInstance:ClusterInstance"})
	attr(state(c, "after"), ["publicly_accessible", "publiclyAccessible"]) == true
	attr(state(c, "before"), ["publicly_accessible", "publiclyAccessible"]) != true
}

exposures contains [c.address, sprintf("%s opens the database to every address (%s)", [c.address, v])] if {
	some c in stepgate.where(risk_changes, "type", {"mongodbatlas_project_ip_access_list"})
	some v in {object.get(state(c, "after"), "cidr_block", null), object.get(state(c, "after"), "ip_address", null)}
	is_string(v)
	public_source(v)
}

exposures contains [c.address, sprintf("%s opens the server to every address (%s-%s)", [c.address, s.start_ip_address, s.end_ip_address])] if {
	some c in stepgate.where(risk_changes, "type", azure_firewall_rule_types)
	s := state(c, "after")
	s.start_ip_address == "0.0.0.0"
	s.end_ip_address == "255.255.255.255"
	state(c, "before") != s
}

exposures contains [c.address, sprintf("%s authorizes %s", [c.address, n.value])] if {
	some c in stepgate.where(risk_changes, "type", {"google_sql_database_instance"})
	some st in blocks(state(c, "after"), "settings")
	some ip in blocks(st, "ip_configuration")
	some n in blocks(ip, "authorized_networks")
	public_source(n.value)
	not sql_public_before(c)
}

sql_public_before(c) if {
	some st in blocks(state(c, "before"), "settings")
	some ip in blocks(st, "ip_configuration")
	some n in blocks(ip, "authorized_networks")
	public_source(n.value)
}

azure_firewall_rule_types := {t | some t in lib.plan_types; startswith(t, "azurerm_"); endswith(t, "_firewall_rule")}

# Public buckets and containers.
public_acls := {"public-read", "public-read-write", "authenticated-read", "publicRead", "publicReadWrite", "allUsers"}

exposures contains [c.address, sprintf("%s sets the ACL %s", [c.address, acl])] if {
	some c in stepgate.where(risk_changes, "type", {"aws_s3_bucket_acl", "aws_s3_bucket", "aws:s3/bucketAclV2:BucketAclV2", "aws:s3/bucket:Bucket", "google_storage_bucket_acl", "google_storage_default_object_acl"})
	acl := attr(state(c, "after"), ["acl", "predefined_acl"])
	acl in public_acls
	attr(state(c, "before"), ["acl", "predefined_acl"]) != acl
}

public_block_settings := ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"]

public_block_types := {"aws_s3_bucket_public_access_block", "aws_s3_account_public_access_block", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"}

exposures contains [c.address, sprintf("%s turns off %s", [c.address, k])] if {
	some c in stepgate.where(risk_changes, "type", public_block_types)
	c.action != "delete"
	some k in public_block_settings
	camel := {"block_public_acls": "blockPublicAcls", "block_public_policy": "blockPublicPolicy", "ignore_public_acls": "ignorePublicAcls", "restrict_public_buckets": "restrictPublicBuckets"}[k]
	attr(state(c, "after"), [k, camel]) == false
	attr(state(c, "before"), [k, camel]) != false
}

exposures contains [c.address, sprintf("%s removes the public access block", [c.address])] if {
	some c in stepgate.where(risk_changes, "type", public_block_types)
	c.action == "delete"
}

exposures contains [c.address, sprintf("%s makes the container public (%s)", [c.address, t])] if {
	some c in stepgate.where(risk_changes, "type", {"azurerm_storage_container"})
	t := object.get(state(c, "after"), "container_access_type", "private")
	t in {"blob", "container"}
	object.get(state(c, "before"), "container_access_type", "private") != t
}

exposures contains [c.address, sprintf("%s allows public blobs", [c.address])] if {
	some c in stepgate.where(risk_changes, "type", {"azurerm_storage_account"})
	c.action == "update"
	attr(state(c, "after"), ["allow_nested_items_to_be_public", "allow_blob_public_access"]) == true
	attr(state(c, "before"), ["allow_nested_items_to_be_public", "allow_blob_public_access"]) == false
}

exposures contains [c.address, sprintf("%s is a function URL anyone can call (authorization NONE)", [c.address])] if {
	some c in stepgate.where(risk_changes, "type", {"aws_lambda_function_url"})
	object.get(state(c, "after"), "authorization_type", "") == "NONE"
	object.get(state(c, "before"), "authorization_type", "") != "NONE"
}

exposures contains [c.address, sprintf("%s lets anyone invoke the function (principal *)", [c.address])] if {
	some c in stepgate.where(risk_changes, "type", {"aws_lambda_permission", "aws:lambda/permission:Permission"})
	object.get(state(c, "after"), "principal", "") == "*"
	object.get(state(c, "before"), "principal", "") != "*"
}

# Resource policies that let anyone in.
public_statements(c, side) := {sprintf("%s to anyone", [actions_text(s)]) |
	some d in documents(c, side, resource_policy_types[c.type])
	d != null
	some s in d
	s.effect == "allow"
	"*" in s.principals
	count({k | some k in s.condition_keys; k in restricting_conditions}) == 0
}

exposures contains [c.address, sprintf("%s makes it public: allows %s", [c.address, p])] if {
	some c in policy_changes
	resource_policy_types[c.type]
	some p in public_statements(c, "after") - public_statements(c, "before")
}

findings contains f if {
	count(exposures) > 0
	addrs := sort({a | some [a, _] in exposures})
	f := lib.finding("network.exposure", addrs, sprintf("Exposure: %s.", [describe_items({t | some [_, t] in exposures})]))
}

# ---------------------------------------------------------------------------
# protection.removed

# path_of: "versioning.0.enabled" as ["versioning", 0, "enabled"].
path_of(a) := [p |
	some s in split(a, ".")
	p := to_path_element(s)
]

to_path_element(s) := to_number(s) if regex.match(`^[0-9]+$`, s)

else := s

protection_tops := {split(p.attribute, ".")[0] | some p in lib.cfg.protections}

protection_candidates := stepgate.where(lib.changes, "changed", protection_tops)

protection_applies(p, t) if not p.types

protection_applies(p, t) if {
	some pat in p.types
	glob.match(pat, null, t)
}

removals contains [c.address, sprintf("%s turns off %s (%s: %v to %v)", [c.address, p.what, p.attribute, p.on, after])] if {
	some c in protection_candidates
	some p in lib.cfg.protections
	top := split(p.attribute, ".")[0]
	top in c.changed
	not top in c.unknown
	protection_applies(p, c.type)
	path := path_of(p.attribute)
	object.get(state(c, "before"), path, null) == p.on
	after := object.get(state(c, "after"), path, null)
	after != p.on
}

removals contains [c.address, sprintf("%s turns off key rotation (rotation_period removed)", [c.address])] if {
	some c in stepgate.where(protection_candidates, "type", {"google_kms_crypto_key"})
	object.get(state(c, "before"), "rotation_period", null) != null
	object.get(state(c, "after"), "rotation_period", null) == null
	not "rotation_period" in c.unknown
}

key_types := {"aws_kms_key", "aws_kms_replica_key", "google_kms_crypto_key", "azurerm_key_vault_key", "oci_kms_key", "aws:kms/key:Key", "gcp:kms/cryptoKey:CryptoKey"}

removals contains [c.address, sprintf("%s deletes %s", [c.address, what])] if {
	some c in stepgate.where(risk_changes, "type", lib.cfg.safeguard_types)
	safeguard_removed(c)
	what := lib.cfg.safeguard_types[c.type]
}

safeguard_removed(c) if c.action == "delete"

safeguard_removed(c) if {
	c.action == "replace"
	c.type in key_types
}

findings contains f if {
	count(removals) > 0
	addrs := sort({a | some [a, _] in removals})
	f := lib.finding("protection.removed", addrs, sprintf("Safeguard removed: %s.", [describe_items({t | some [_, t] in removals})]))
}

# flagged: the addresses of the three rules above; sensitive.change
# reports the other changes.
flagged := {a |
	some set in [escalations, exposures, removals]
	some [a, _] in set
}
