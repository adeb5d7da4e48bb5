# Pure-Rego versions of stepgate's Go built-in functions (internal/policy:
# builtins.go, types.go, content.go), for the conftest copy of the built-in
# policy. The generated stepgate_*.rego modules `import data.stepgate`, so
# their calls of stepgate.where and the others land here. Each gives the
# same answer as its Go version on well-formed input; the Go versions exist
# because these cost a pass of Rego over every change.
package stepgate

# where(items, key, values): the objects whose member key (or an element
# of it, for a list or set) is one of values (a set, list or object keys).
where(items, key, values) := [x |
	some x in items
	is_object(x)
	v := x[key]
	matches_any(v, values)
]

matches_any(v, values) if {
	not is_array(v)
	not is_set(v)
	is_value_in(v, values)
}

matches_any(v, values) if {
	is_array(v)
	some e in v
	is_value_in(e, values)
}

matches_any(v, values) if {
	is_set(v)
	some e in v
	is_value_in(e, values)
}

is_value_in(v, values) if {
	is_object(values)
	_ = values[v]
}

is_value_in(v, values) if {
	not is_object(values)
	v in values
}

# distinct(items, key): every value of member key (elements of lists).
distinct(items, key) := {e |
	some x in items
	is_object(x)
	v := x[key]
	some e in elements(v)
}

elements(v) := v if is_array(v)

else := v if is_set(v)

else := [v]

# tokens(s): lower-case parts split on - _ . / : and white space.
tokens(s) := {t | some t in regex.split(`[-_./:\s]+`, lower(s)); t != ""}

# tagged(items, keys, values): the changes with a tag whose key and value
# (whole, or one of its tokens), in lower case, are in keys and values.
tagged(items, keys, values) := [x |
	some x in items
	is_object(x)
	tag_matches(x, keys, values)
]

tag_matches(x, keys, values) if {
	some k, vs in x.tags
	is_value_in(lower(k), keys)
	some v in elements(vs)
	is_string(v)
	value_matches(lower(v), values)
}

value_matches(v, values) if is_value_in(v, values)

value_matches(v, values) if {
	some t in tokens(v)
	is_value_in(t, values)
}

# type_categories(patterns, types): each type that matches a pattern (a
# glob, or a whole name), with the set of its categories.
type_categories(patterns, types) := {t: cats |
	some t in types
	cats := {cat |
		some cat, ps in patterns
		some p in ps
		glob.match(p, null, t)
	}
	count(cats) > 0
}

# policy_statements(doc): the statements of an IAM-style policy document,
# normalised as content.go does; null when it cannot be read.
policy_statements(doc) := null if {
	is_string(doc)
	not json.is_valid(doc)
} else := statements_of(json.unmarshal(doc)) if {
	is_string(doc)
} else := statements_of(doc) if {
	is_object(doc)
} else := null

statements_of(d) := null if not is_object(d)

else := array.concat(bindings_of(d), [normal_statement(s) | some s in statement_list(d.Statement)]) if {
	d.Statement
} else := bindings_of(d) if {
	is_array(d.bindings)
} else := null

bindings_of(d) := [{"role": b.role, "members": object.get(b, "members", [])} | some b in object.get(d, "bindings", [])]

statement_list(s) := s if is_array(s)

else := [s]

str_list(v) := [] if v == null

else := [v] if is_string(v)

else := v

normal_statement(s) := {
	"effect": lower(object.get(s, "Effect", "")),
	"action_names": array.concat(str_list(object.get(s, "Action", null)), str_list(object.get(s, "NotAction", null))),
	"not_action": has(s, "NotAction"),
	"resources": array.concat(str_list(object.get(s, "Resource", null)), str_list(object.get(s, "NotResource", null))),
	"not_resource": has(s, "NotResource"),
	"principals": array.concat(sort(principals(s, "Principal")), sort(principals(s, "NotPrincipal"))),
	"not_principal": has(s, "NotPrincipal"),
	"condition_keys": sort([lower(k) | some _, m in object.get(s, "Condition", {}); some k, _ in m]),
}

has(s, k) if s[k] != null

else := false

principals(s, k) := [] if object.get(s, k, null) == null

else := [s[k]] if is_string(s[k])

else := [x |
	some kind, v in s[k]
	some e in str_list(v)
	x := principal_text(kind, e)
]

principal_text(_, "*") := "*"

principal_text(kind, e) := concat(":", [kind, e]) if e != "*"

# port_ranges(v): the [low, high] ranges of a port, a range or a list of
# them; every port for *, any, all, -1 and what cannot be read.
port_ranges(v) := rs if {
	rs := ranges_of(v)
	every r in rs {
		is_array(r)
	}
} else := [[0, 65535]]

ranges_of(v) := scalar_ranges(v) if not is_array(v)

ranges_of(v) := [r | some e in v; some r in scalar_ranges(e)] if is_array(v)

scalar_ranges(v) := [[v, v]] if is_number(v)

else := [r |
	some part in split(v, ",")
	p := trim_space(part)
	p != ""
	r := range_of(p)
] if is_string(v)

else := ["unreadable"]

range_of(p) := [0, 65535] if lower(p) in {"*", "any", "all", "-1"}

else := [n, n] if {
	regex.match(`^[0-9]+$`, p)
	n := to_number(p)
} else := [min([a, b]), max([a, b])] if {
	parts := regex.find_all_string_submatch_n(`^\s*([0-9]+)\s*[-/:]\s*([0-9]+)\s*$`, p, 1)
	count(parts) == 1
	a := to_number(parts[0][1])
	b := to_number(parts[0][2])
} else := "unreadable"
