# METADATA
# title: stepgate built-in rules
# description: |
#   The default policy: production changes, sensitive types, stateful
#   destroys, blast radius, errored plans and secret reads. Tuned by the
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

sensitive := lib.sensitive_changes

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
	reason := sprintf("%s to %s.", [
		lib.plural(count(sensitive), "change", "changes"),
		concat("; ", parts),
	])
	f := lib.finding("sensitive.change", lib.addresses(sensitive), reason)
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

blast_reasons contains sprintf("%d changes at once (more than %d)", [n, max]) if {
	n := count(lib.changes)
	max := lib.cfg.blast_radius.max_changes
	n > max
}

blast_reasons contains sprintf("%d deletes and replaces at once (more than %d)", [n, max]) if {
	n := count(lib.destructive)
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

findings contains f if {
	not input.plan.errored
	input.plan.applyable == false
	f := lib.finding("plan.errored", [], "The plan is not applyable: the tool said it cannot be applied as it is.")
}

findings contains f if {
	input.operation.kind == "secret.read"
	f := lib.finding("secret.read", [], "Reading secrets releases credentials to the pipeline.")
}

its_data(n) := "its data is" if n == 1

else := "their data is"
