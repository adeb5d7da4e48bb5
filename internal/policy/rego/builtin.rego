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
	f := lib.finding("prod.change", lib.addresses(lib.changes), reason)
}

sensitive := [c | some c in lib.changes; lib.is_sensitive(c)]

findings contains f if {
	count(sensitive) > 0
	cats := {cat | some c in sensitive; some cat in lib.categories(c)}
	parts := [sprintf("%s (%s)", [object.get(category_names, cat, cat), concat(", ", types)]) |
		some cat in cats
		types := {c.type | some c in sensitive; cat in lib.categories(c)}
	]
	reason := sprintf("%s to %s.", [
		lib.plural(count(sensitive), "change", "changes"),
		concat("; ", parts),
	])
	f := lib.finding("sensitive.change", lib.addresses(sensitive), reason)
}

stateful_destroyed := [c | some c in lib.destructive; c.type in lib.stateful_types]

findings contains f if {
	count(stateful_destroyed) > 0
	reason := sprintf("%s that hold data would be deleted or replaced (%s); their data is lost unless it is backed up.", [
		lib.plural(count(stateful_destroyed), "resource", "resources"),
		concat(", ", {c.type | some c in stateful_destroyed}),
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
	f := lib.finding("blast.radius", lib.addresses(lib.changes), reason)
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
