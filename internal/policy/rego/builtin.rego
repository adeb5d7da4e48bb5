# METADATA
# title: stepgate built-in rules
# description: |
#   The default policy: production changes, sensitive types, stateful
#   destroys, blast radius, errored plans and secret reads (risks.rego
#   holds the rules that read what a change does). Tuned by the
#   `policy:` section of stepgate.yaml (see docs/policy.md).
package stepgate.rules.builtin

import data.stepgate.lib

category_names := {
	"identity": "identity and access",
	"secrets": "keys and secrets",
	"network": "network boundaries",
	"custom": "sensitive types from your configuration",
}

findings contains f if {
	lib.production
	n := count(lib.changes)
	n > 0
	reason := sprintf("Production (%s): %s would change.", [
		concat("; ", lib.production_reasons),
		lib.plural(n, "resource", "resources"),
	])
	f := lib.finding("prod.change", lib.change_addresses, reason)
}

# sensitive: the changes to sensitive types that identity.escalation,
# network.exposure and protection.removed did not report.
sensitive := stepgate.except(lib.sensitive_changes, "address", flagged)

findings contains f if {
	count(sensitive) > 0
	# Categories by distinct type: a plan has few types and many changes.
	# A type is sensitive by its categories, or by value (sensitive_when),
	# which counts as keys and secrets.
	type_cats := {t: cats |
		some t in stepgate.distinct(sensitive, "type")
		cats := object.get(lib.sensitive_categories, t, {"secrets"})
	}
	cats := {cat | some cs in type_cats; some cat in cs}
	parts := [sprintf("%s (%s)", [object.get(category_names, cat, cat), concat(", ", types)]) |
		some cat in cats
		types := {t | some t, cs in type_cats; cat in cs}
	]
	addrs := lib.addresses(sensitive)
	reason := sprintf("%s to %s: %s.", [
		lib.plural(count(sensitive), "change", "changes"),
		concat("; ", parts),
		what_changed(addrs),
	])
	f := lib.finding("sensitive.change", addrs, reason)
}

# what_changed says what the first few changes do: "aws_iam_role.app is
# created", "aws_security_group.web changes ingress, tags".
max_described := 6

what_changed(addrs) := text if {
	first := {a | some a in array.slice(addrs, 0, max_described)}
	parts := sort([change_text(c) | some c in stepgate.where(sensitive, "address", first)])
	more := count(addrs) - count(first)
	text := concat("", [concat("; ", parts), and_more(more)])
}

and_more(n) := "" if n <= 0

else := sprintf("; and %d more", [n])

change_text(c) := sprintf("%s changes %s", [c.address, concat(", ", c.changed)]) if {
	c.action == "update"
	count(c.changed) > 0
} else := sprintf("%s is %s", [c.address, action_words[c.action]]) if {
	action_words[c.action]
} else := sprintf("%s: %s", [c.address, c.action])

action_words := {
	"create": "created",
	"update": "updated",
	"delete": "deleted",
	"replace": "replaced",
	"import": "imported",
	"forget": "removed from state",
}

stateful_destroyed := stepgate.where(lib.destructive, "type", lib.stateful_types)

findings contains f if {
	count(stateful_destroyed) > 0
	n := count(stateful_destroyed)
	reason := sprintf("%s would be deleted or replaced (%s); %s lost unless backed up.", [
		lib.plural(n, "stateful resource", "stateful resources"),
		concat(", ", stepgate.distinct(stateful_destroyed, "type")),
		its_data(n),
	])
	f := lib.finding("stateful.destroy", lib.addresses(stateful_destroyed), reason)
}

# Helpers (null_resource, time_*, random_* but passwords...) change
# nothing real: they do not count.
helper_types := {t | some t, _ in stepgate.type_categories({"helper": lib.cfg.helper_types}, lib.plan_types)}

counted_changes := count(lib.changes) - count(stepgate.where(lib.changes, "type", helper_types))

counted_destructive := count(lib.destructive) - count(stepgate.where(lib.destructive, "type", helper_types))

blast_reasons contains sprintf("%d changes at once (more than %d)", [n, max]) if {
	n := counted_changes
	max := lib.cfg.blast_radius.max_changes
	n > max
}

blast_reasons contains sprintf("%d deletes and replaces at once (more than %d)", [n, max]) if {
	n := counted_destructive
	max := lib.cfg.blast_radius.max_destructive
	n > max
}

findings contains f if {
	count(blast_reasons) > 0
	reason := sprintf("Large blast radius: %s.", [concat("; ", blast_reasons)])
	f := lib.finding("blast.radius", lib.change_addresses, reason)
}

findings contains f if {
	input.plan.errored
	f := lib.finding("plan.errored", [], "The plan errored: the tool could not finish planning, so what it would do is unknown.")
}

# Terraform 1.8+ writes applyable false for a plan that changes nothing:
# that is an empty plan, not a broken one.
findings contains f if {
	not input.plan.errored
	input.plan.applyable == false
	count(lib.changes) > 0
	f := lib.finding("plan.errored", [], "The plan is not applyable: the tool said it cannot be applied as it is.")
}

# --- Secrets ------------------------------------------------------------------
# input.operation.secrets lists the secrets the operation would release
# (name, and the glob of the workspaces it is kept for): a secret.read, or
# an apply that also reads secrets (stepgate check --secret).

secrets_read := object.get(input.operation, "secrets", [])

# secret_name reads an entry's name with object.get: the projection test
# flags any `.name` reference, as a change's name is left out of the
# projected input; a secret's entry always carries it.
secret_name(s) := object.get(s, "name", "")

secret_list := concat(", ", [secret_name(s) | some s in secrets_read])

findings contains f if {
	input.operation.kind == "secret.read"
	count(secrets_read) == 0
	f := lib.finding("secret.read", [], "Reading secrets releases credentials to the pipeline.")
}

findings contains f if {
	count(secrets_read) > 0
	f := lib.finding("secret.read", [], sprintf("Releases %s to the pipeline: %s.", [
		lib.plural(count(secrets_read), "secret", "secrets"),
		secret_list,
	]))
}

# policy.secrets: requirements per secret name pattern (* matches any
# characters, slashes included). One finding per secret and pattern, which
# says why: the pattern it matched and what that asks.
findings contains f if {
	some s in secrets_read
	some pattern, r in object.get(lib.cfg, "secrets", {})
	name := secret_name(s)
	glob.match(pattern, null, name)
	groups := object.get(r, "groups", [])
	f := {
		"rule": "secret.requirements",
		"decision": object.get(r, "decision", "step_up"),
		"severity": object.get(r, "severity", "critical"),
		"addresses": [],
		"reason": sprintf("Secret %s matches policy.secrets[%q], which asks for %s.", [name, pattern, secret_needs(r, groups)]),
		"requirements": {
			"aal": object.get(r, "aal", 0),
			"approvals": object.get(r, "approvals", 0),
			"max_age": object.get(r, "max_age", 0),
			"groups": groups,
		},
	}
}

secret_needs(r, groups) := sprintf("aal %d and %s", [object.get(r, "aal", 0), lib.plural(object.get(r, "approvals", 0), "approval", "approvals")]) if count(groups) == 0

else := sprintf("aal %d and %s from group %s", [object.get(r, "aal", 0), lib.plural(object.get(r, "approvals", 0), "approval", "approvals"), concat(" and ", groups)])

its_data(n) := "its data is" if n == 1

else := "their data is"
