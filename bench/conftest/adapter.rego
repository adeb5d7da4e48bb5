# The input of stepgate's built-in policy, built in Rego from conftest's
# input (the whole document of `terraform show -json`), as
# internal/policy/input.go builds it in Go: the changes that modify
# infrastructure, each with its address, type, action, before, after, the
# merged tags, the containers, the attributes known only after apply and
# those an update changes.
package stepgate.conftest

import data.stepgate.config

# The operation: conftest has no --workspace; give it as data
# ({"workspace": "billing-dev"} in a --data file). The benchmark's
# workspace is billing-prod.
default workspace := "billing-prod"

workspace := data.workspace if is_string(data.workspace)

operation := {"kind": "terraform.apply", "workspace": workspace, "environment": ""}

# The context of a check: conftest knows nothing of the run that asks, who
# asks, or what the store remembers, so these are what `stepgate eval`
# gives without --pipeline, --requester or --history: no verified
# pipeline, an anonymous token, no history (input.time, read with
# object.get, is absent: no freeze window is active). Read from the input
# (where a plan has no such key) so that the type checker does not see a
# constant null.
pipeline := object.get(input, "stepgate_pipeline", null)

requester := {"kind": "token", "name": "", "owner": "", "groups": []}

history := object.get(input, "stepgate_history", null)

plan := {
	"errored": object.get(input, "errored", false) == true,
	"applyable": object.get(input, "applyable", true) != false,
	# A Terraform plan names no Pulumi stack (read from the input so that
	# the type checker does not see an empty list).
	"stacks": object.get(input, "pulumi_stacks", []),
}

action_of(["create"]) := "create"

action_of(["update"]) := "update"

action_of(["delete"]) := "delete"

action_of(["delete", "create"]) := "replace"

action_of(["create", "delete"]) := "replace"

action_of(["forget"]) := "forget"

# A no-op that imports is an import.
action(ch) := "import" if {
	ch.actions in {["no-op"], []}
	object.get(ch, "importing", null) != null
} else := action_of(ch.actions)

changes := [change(rc) |
	some rc in input.resource_changes
	object.get(rc, "mode", "managed") == "managed"
	action(rc.change)
]

change(rc) := {
	"address": rc.address,
	"type": rc.type,
	"action": action(rc.change),
	"before": rc.change.before,
	"after": rc.change.after,
	"tags": tags([rc.change.before, rc.change.after]),
	"containers": containers(rc.type, [rc.change.before, rc.change.after]),
	"unknown": unknown(rc.change),
	"changed": changed(rc.change),
}

# tags: every tag of the tag attributes (maps, OCI defined tags, lists of
# {key, value}) and Kubernetes labels, key in lower case, with its values.
tag_pairs(states) := {[k, v] |
	some st in states
	is_object(st)
	some t in tag_sources(st)
	some [k0, v] in tag_entries(t)
	is_string(v)
	some k in tag_keys(lower(k0))
}

tag_sources(st) := array.concat(
	[st[a] | some a in config.production.tag_attributes; st[a] != null],
	[md.labels | some md in metadata(st); is_object(md.labels)],
)

metadata(st) := [m | some m in st.metadata; is_object(m)] if is_array(st.metadata)

else := [st.metadata] if is_object(st.metadata)

else := []

tag_entries(t) := array.concat(
	[[k, v] | some k, v in t; not is_object(v)],
	[[concat(".", [ns, k]), v] | some ns, inner in t; is_object(inner); some k, v in inner],
) if is_object(t)

else := array.concat(
	[[e.key, e.value] | some e in t; is_object(e); e.key; e.value],
	[[e.Key, e.Value] | some e in t; is_object(e); not e.key; e.Key; e.Value],
) if is_array(t)

else := []

tag_keys(k) := {k, suffix} if {
	parts := split(k, ".")
	count(parts) > 1
	suffix := parts[count(parts) - 1]
	suffix != ""
} else := {k}

tags(states) := {k: [v | some [k2, v] in pairs; k2 == k] |
	pairs := tag_pairs(states)
	some [k, _] in pairs
}

containers(typ, states) := [v | some v in container_set(typ, states)]

container_set(typ, states) := {v |
	some st in states
	is_object(st)
	some a in config.production.reference_attributes
	v := st[a]
	is_string(v)
} | {v |
	some st in states
	is_object(st)
	some md in metadata(st)
	v := md.namespace
	is_string(v)
} | {v |
	startswith(typ, "kubernetes_namespace")
	some st in states
	is_object(st)
	some md in metadata(st)
	v := md.name
	is_string(v)
}

# unknown: the top-level attributes with a part known only after apply.
unknown(ch) := [k |
	some k, v in object.get(ch, "after_unknown", {})
	has_true(v)
]

has_true(v) if v == true

has_true(v) if {
	some _, x in walk(v)
	x == true
}

# changed: for an update, the top-level attributes whose value differs,
# that only one side has (not null), or known only after apply.
changed(ch) := [] if ch.actions != ["update"]

else := sort([k | some k in changed_set(ch)])

changed_set(ch) := {k |
	some k, v in ch.after
	not same_before(ch.before, k, v)
} | {k |
	some k, v in ch.before
	v != null
	not has_key(ch.after, k)
	not unknown_top(ch, k)
} | {k | some k in unknown(ch)}

same_before(before, k, v) if before[k] == v

same_before(before, k, v) if {
	v == null
	not has_key(before, k)
}

has_key(obj, k) if _ = obj[k]

unknown_top(ch, k) if ch.after_unknown[k] == true
