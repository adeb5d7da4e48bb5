# METADATA
# title: stepgate library
# description: |
#   Helpers shared by the built-in rules and by users' own rules: which
#   changes modify infrastructure, whether the operation is production,
#   how resource types are classified, and how a finding is built from the
#   configured requirements. Import it with `import data.stepgate.lib`.
package stepgate.lib

cfg := data.stepgate.config

# changes holds every change that modifies infrastructure: input.changes.
# No-op changes never reach the input, and data sources that are only read
# are in input.reads.
changes := input.changes

# destructive: the deletes and replaces, in order. stepgate.where selects
# the objects whose member has one of the values (see docs/policy.md,
# Functions): one pass in Go instead of a comprehension over every change.
destructive := stepgate.where(changes, "action", {"delete", "replace"})

# addresses: the addresses of changes cs, sorted, each once.
addresses(cs) := sort(stepgate.distinct(cs, "address"))

# change_addresses: the addresses of every change, sorted, computed once.
change_addresses := addresses(changes)

env_names := {lower(e) | some e in cfg.production.environments}

tag_keys := {lower(k) | some k in cfg.production.tag_keys}

# tokens splits a name on - _ . / : and white space, in lower case
# (stepgate.tokens does it in Go).
tokens(s) := stepgate.tokens(s)

# names_production holds when a string has a production token in it:
# "rg-billing-prod" does, "product-catalog" does not.
names_production(s) if {
	is_string(s)
	count(tokens(s) & env_names) > 0
}

production_reasons contains sprintf("environment %q", [env]) if {
	env := input.operation.environment
	is_string(env)
	lower(env) in env_names
}

production_reasons contains sprintf("workspace %q", [ws]) if {
	ws := input.operation.workspace
	names_production(ws)
}

production_reasons contains sprintf("workspace %q matches %q", [ws, p]) if {
	ws := input.operation.workspace
	is_string(ws)
	some p in cfg.production.workspaces
	glob.match(p, null, ws)
}

# prod_tagged: changed resources tagged or labelled as production. Each
# change carries `tags`: its tag maps (production.tag_attributes) before and
# after, merged, keys in lower case. stepgate.tagged selects the changes
# with a tag whose key is in tag_keys and one of whose values is in
# env_names, in any case.
prod_tagged contains c.address if {
	some c in stepgate.tagged(changes, tag_keys, env_names)
}

# prod_named: changed containers (resource groups, projects...) whose own
# name says production; prod_names says which name, for the reason.
prod_named contains c.address if {
	some c in stepgate.where(changes, "type", cfg.production.name_attributes)
	attrs := cfg.production.name_attributes[c.type]
	some state in [c.before, c.after]
	some a in attrs
	names_production(state[a])
}

prod_names[c.address] := min({state[a] |
	some state in [c.before, c.after]
	some a in cfg.production.name_attributes[c.type]
	names_production(state[a])
}) if {
	some c in stepgate.where(changes, "type", cfg.production.name_attributes)
	c.address in prod_named
}

# prod_contained: changed resources that live in a production container.
# Each change carries `containers`: the values of its
# production.reference_attributes (resource_group_name, project, scope).
# Names repeat across resources, so each is tested once: stepgate.distinct
# collects the distinct values of a member (the elements of a list).
production_containers := {v |
	some v in stepgate.distinct(changes, "containers")
	names_production(v)
}

prod_contained contains c.address if {
	some c in stepgate.where(changes, "containers", production_containers)
}

# A Pulumi stack, from the URNs of the changes (urn:pulumi:STACK::...).
production_reasons contains sprintf("Pulumi stack %q", [stack]) if {
	some stack in input.plan.stacks
	names_production(stack)
}

production_reasons contains describe(prod_tagged, "tagged as production")

production_reasons contains sprintf("%s is named %s", [a, prod_names[a]]) if {
	count(prod_named) == 1
	some a in prod_named
}

production_reasons contains sprintf("%d resources are named as production, such as %s (%s)", [count(prod_named), a, prod_names[a]]) if {
	count(prod_named) > 1
	a := min(prod_named)
}

production_reasons contains describe(prod_contained, "in a production container")

describe(set, what) := sprintf("%s is %s", [min(set), what]) if count(set) == 1

describe(set, what) := sprintf("%d resources are %s, such as %s", [count(set), what, min(set)]) if count(set) > 1

production if count(production_reasons) > 0

context := "production" if production

else := "outside_production"

# Classification of the types present in this plan. Each distinct type is
# classified once, by stepgate.type_categories: patterns with a * are globs
# (glob.match(p, null, type)), the others are compared whole. The function
# remembers the compiled patterns and each type's categories across
# evaluations; it reads the patterns it is given, so overriding
# data.stepgate.config (a test's `with`) works as expected.
plan_types := stepgate.distinct(changes, "type")

# sensitive_categories maps each sensitive type of this plan to its
# categories (identity, secrets, network, custom...).
sensitive_categories := stepgate.type_categories(cfg.sensitive_types, plan_types)

stateful_types := {t | some t, _ in stepgate.type_categories({"stateful": cfg.stateful_types}, plan_types)}

is_sensitive(c) if sensitive_categories[c.type]

is_sensitive(c) if sensitive_by_value(c)

# sensitive_changes: the changes to sensitive resources: those of a
# sensitive type, then those of a type that is sensitive by value
# (sensitive_when) whose values say so.
sensitive_changes := array.concat(
	stepgate.where(changes, "type", sensitive_categories),
	[c |
		some c in stepgate.where(changes, "type", cfg.sensitive_when)
		not sensitive_categories[c.type]
		sensitive_by_value(c)
	],
)

# sensitive_by_value: a type that is sensitive only with some attribute
# values (an SSM parameter of type SecureString).
sensitive_by_value(c) if {
	conds := cfg.sensitive_when[c.type]
	some state in [c.before, c.after]
	some attr, values in conds
	state[attr] in values
}

categories(c) := sensitive_categories[c.type]

categories(c) := {"secrets"} if {
	not sensitive_categories[c.type]
	is_sensitive(c)
}

# finding builds a finding for a built-in rule with the requirements that
# the configuration sets for it in this context. It is undefined when the
# rule does not apply in this context.
finding(rule, addrs, reason) := f if {
	r := cfg.rules[rule][context]
	f := {
		"rule": rule,
		"decision": r.decision,
		"severity": object.get(r, "severity", ""),
		"addresses": addrs,
		"reason": reason,
		"requirements": {
			"aal": object.get(r, "aal", 0),
			"approvals": object.get(r, "approvals", 0),
			"max_age": object.get(r, "max_age", 0),
		},
	}
}

plural(n, one, many) := sprintf("%d %s", [n, one]) if n == 1

plural(n, one, many) := sprintf("%d %s", [n, many]) if n != 1
