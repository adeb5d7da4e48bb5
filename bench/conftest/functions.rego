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

# except(items, key, values): the objects whose member key is not one of
# values, or that have none.
except(items, key, values) := [x |
	some x in items
	is_object(x)
	not has_member_in(x, key, values)
]

has_member_in(x, key, values) if matches_any(x[key], values)

# having(items, attrs): the changes whose after (or before, but for a
# create) has one of attrs, not null, or whose unknown list names one.
having(items, attrs) := [c |
	some c in items
	is_object(c)
	has_attr(c, attrs)
]

has_attr(c, attrs) if {
	some side in ["before", "after"]
	st := state(c, side)
	some a in attr_names(attrs)
	st[a] != null
}

has_attr(c, attrs) if {
	some a in attr_names(attrs)
	a in object.get(c, "unknown", [])
}

attr_names(attrs) := [a | some a, _ in attrs] if is_object(attrs)

else := attrs

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

# ---------------------------------------------------------------------------
# ingress_openings(changes, sources, ports): what the changes newly open to
# the internet, as [address, reason] pairs (internal/policy/ingress.go).

ingress_openings(changes, sources, ports) := {[c.address, sprintf("%s opens %s", [c.address, t])] |
	some c in changes
	some t in opening_texts(c, "after", sources, ports) - opening_texts(c, "before", sources, ports)
}

opening_texts(c, side, sources, ports) := {sprintf("%s to %s", [opening_text(o), o.source]) |
	some o in rule_openings(c, side)
	is_string(o.source)
	lower(o.source) in sources
	counts_as_exposure(o, ports)
}

rule_openings(c, side) := shape1_openings(c, side) |
	shape2_openings(c, side) |
	shape3_openings(c, side) |
	shape4_openings(c, side) |
	shape5_openings(c, side) |
	shape6_openings(c, side) |
	shape7_openings(c, side) |
	shape8_openings(c, side) |
	shape9_openings(c, side) |
	shape10_openings(c, side) |
	shape11_openings(c, side) |
	shape12_openings(c, side)

opening_text(o) := "all ports" if {
	o.proto == "all"
} else := sprintf("all %s ports", [o.proto]) if {
	o.lo <= 0
	o.hi >= 65535
} else := sprintf("%d/%s", [o.lo, o.proto]) if {
	o.lo == o.hi
} else := sprintf("%d-%d/%s", [o.lo, o.hi, o.proto])

counts_as_exposure(o, ports) if {
	o.proto != "icmp"
	o.proto != "icmpv6"
	lo := max([o.lo, 0])
	hi := min([o.hi, 65535])
	public := count({p | some p in ports; p >= lo; p <= hi})
	(hi - lo) + 1 > public
}

state(c, side) := {} if {
	side == "before"
	c.action == "create"
} else := s if {
	s := c[side]
	is_object(s)
} else := {}

as_list(v) := v if is_array(v)

else := [x | some x in v] if is_set(v)

else := [] if v == null

else := [v]

attr(s, names) := v if {
	some n in names
	v := s[n]
	v != null
} else := null

blocks(s, name) := [b | some b in as_list(object.get(s, name, [])); is_object(b)]

shape1_openings(c, side) := os if {
	os := {o |
	c.type in {"aws_security_group", "aws_default_security_group", "aws:ec2/securityGroup:SecurityGroup"}
	some r in blocks(state(c, side), "ingress")
	some src in array.concat(as_list(attr(r, ["cidr_blocks", "cidrBlocks"])), as_list(attr(r, ["ipv6_cidr_blocks", "ipv6CidrBlocks"])))
	some rg in aws_ranges(r.protocol, attr(r, ["from_port", "fromPort"]), attr(r, ["to_port", "toPort"]))
	o := {"proto": norm_proto(r.protocol), "lo": rg[0], "hi": rg[1], "source": src}
	}
}

shape2_openings(c, side) := os if {
	os := {o |
	c.type in {"aws_security_group_rule", "aws:ec2/securityGroupRule:SecurityGroupRule"}
	s := state(c, side)
	s.type == "ingress"
	some src in array.concat(as_list(attr(s, ["cidr_blocks", "cidrBlocks"])), as_list(attr(s, ["ipv6_cidr_blocks", "ipv6CidrBlocks"])))
	some rg in aws_ranges(s.protocol, attr(s, ["from_port", "fromPort"]), attr(s, ["to_port", "toPort"]))
	o := {"proto": norm_proto(s.protocol), "lo": rg[0], "hi": rg[1], "source": src}
	}
}

shape3_openings(c, side) := os if {
	os := {o |
	c.type in {"aws_vpc_security_group_ingress_rule", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"}
	s := state(c, side)
	some src in [attr(s, ["cidr_ipv4", "cidrIpv4"]), attr(s, ["cidr_ipv6", "cidrIpv6"])]
	is_string(src)
	proto := attr(s, ["ip_protocol", "ipProtocol"])
	some rg in aws_ranges(proto, attr(s, ["from_port", "fromPort"]), attr(s, ["to_port", "toPort"]))
	o := {"proto": norm_proto(proto), "lo": rg[0], "hi": rg[1], "source": src}
	}
}

shape4_openings(c, side) := os if {
	os := {o |
	c.type in {"azurerm_network_security_rule", "azurerm_network_security_group"}
	some r in azure_rules(c, side)
	lower(object.get(r, "direction", "")) == "inbound"
	lower(object.get(r, "access", "")) == "allow"
	some src in array.concat(as_list(object.get(r, "source_address_prefix", null)), as_list(object.get(r, "source_address_prefixes", null)))
	ports := array.concat(as_list(object.get(r, "destination_port_range", null)), as_list(object.get(r, "destination_port_ranges", null)))
	some rg in port_ranges(ports)
	o := {"proto": norm_proto(object.get(r, "protocol", "*")), "lo": rg[0], "hi": rg[1], "source": src}
	}
}

shape5_openings(c, side) := os if {
	os := {o |
	c.type in {"google_compute_firewall", "gcp:compute/firewall:Firewall"}
	s := state(c, side)
	upper(object.get(s, "direction", "INGRESS")) != "EGRESS"
	object.get(s, "disabled", false) != true
	some src in as_list(attr(s, ["source_ranges", "sourceRanges"]))
	some a in array.concat(blocks(s, "allow"), blocks(s, "allows"))
	ports := object.get(a, "ports", [])
	some rg in gcp_ranges(ports)
	o := {"proto": norm_proto(object.get(a, "protocol", "all")), "lo": rg[0], "hi": rg[1], "source": src}
	}
}

shape6_openings(c, side) := os if {
	os := {o |
	c.type in {"oci_core_security_list", "oci_core_default_security_list"}
	some r in blocks(state(c, side), "ingress_security_rules")
	some rg in oci_port_ranges(r)
	o := {"proto": norm_proto(object.get(r, "protocol", "all")), "lo": rg[0], "hi": rg[1], "source": r.source}
	}
}

shape7_openings(c, side) := os if {
	os := {o |
	c.type in {"oci_core_network_security_group_security_rule"}
	s := state(c, side)
	upper(object.get(s, "direction", "")) == "INGRESS"
	some rg in oci_port_ranges(s)
	o := {"proto": norm_proto(object.get(s, "protocol", "all")), "lo": rg[0], "hi": rg[1], "source": s.source}
	}
}

shape8_openings(c, side) := os if {
	os := {o |
	c.type in {"yandex_vpc_security_group", "yandex_vpc_default_security_group", "yandex_vpc_security_group_rule"}
	some r in yandex_rules(c, side)
	some src in array.concat(as_list(object.get(r, "v4_cidr_blocks", null)), as_list(object.get(r, "v6_cidr_blocks", null)))
	some rg in yandex_ranges(r)
	o := {"proto": norm_proto(object.get(r, "protocol", "any")), "lo": rg[0], "hi": rg[1], "source": src}
	}
}

shape9_openings(c, side) := os if {
	os := {o |
	c.type in {"digitalocean_firewall"}
	some r in blocks(state(c, side), "inbound_rule")
	some src in as_list(object.get(r, "source_addresses", null))
	norm_proto(object.get(r, "protocol", "")) != "icmp"
	some rg in port_ranges(object.get(r, "port_range", "all"))
	o := {"proto": norm_proto(r.protocol), "lo": rg[0], "hi": rg[1], "source": src}
	}
}

shape10_openings(c, side) := os if {
	os := {o |
	c.type in {"hcloud_firewall"}
	some r in blocks(state(c, side), "rule")
	object.get(r, "direction", "") == "in"
	some src in as_list(object.get(r, "source_ips", null))
	some rg in port_ranges(object.get(r, "port", "any"))
	o := {"proto": norm_proto(object.get(r, "protocol", "")), "lo": rg[0], "hi": rg[1], "source": src}
	}
}

shape11_openings(c, side) := os if {
	os := {o |
	c.type in {"linode_firewall"}
	some r in blocks(state(c, side), "inbound")
	upper(object.get(r, "action", "")) == "ACCEPT"
	some src in array.concat(as_list(object.get(r, "ipv4", null)), as_list(object.get(r, "ipv6", null)))
	ports := object.get(r, "ports", "")
	some rg in linode_ranges(ports)
	o := {"proto": norm_proto(object.get(r, "protocol", "")), "lo": rg[0], "hi": rg[1], "source": src}
	}
}

shape12_openings(c, side) := os if {
	os := {o |
	c.type in {"alicloud_security_group_rule"}
	s := state(c, side)
	s.type == "ingress"
	lower(object.get(s, "policy", "accept")) == "accept"
	some src in [object.get(s, "cidr_ip", null), object.get(s, "ipv6_cidr_ip", null)]
	is_string(src)
	some rg in alicloud_ranges(object.get(s, "port_range", "-1/-1"))
	o := {"proto": norm_proto(object.get(s, "ip_protocol", "all")), "lo": rg[0], "hi": rg[1], "source": src}
	}
}

# openings(c, side): what a change opens to the internet on that side, as
# {"proto": ..., "lo": ..., "hi": ..., "source": ...}. One body per
# provider shape.
norm_proto(p) := "all" if lower(format_int_or_string(p)) in {"-1", "all", "*", "any"}

else := "tcp" if lower(format_int_or_string(p)) in {"6", "tcp"}

else := "udp" if lower(format_int_or_string(p)) in {"17", "udp"}

else := "icmp" if lower(format_int_or_string(p)) in {"1", "icmp", "58", "icmpv6", "icmp6", "ipv6-icmp"}

else := lower(format_int_or_string(p))

format_int_or_string(p) := p if is_string(p)

else := sprintf("%v", [p])

aws_ranges(proto, from, to) := [[0, 65535]] if norm_proto(proto) == "all"

else := [[from, to]] if {
	is_number(from)
	is_number(to)
	from >= 0
}

else := [[0, 65535]]

# AWS security groups (inline ingress blocks) and their Pulumi form.



# Azure network security rules, standalone and inline.
azure_rules(c, side) := [state(c, side)] if c.type == "azurerm_network_security_rule"

else := blocks(state(c, side), "security_rule")


# Google Cloud firewalls.

gcp_ranges(ports) := [[0, 65535]] if count(as_list(ports)) == 0

else := port_ranges(ports)

# OCI security lists and network security group rules.
oci_ranges(r) := [[o.min, o.max] |
	some opt in array.concat(blocks(r, "tcp_options"), blocks(r, "udp_options"))
	some o in array.concat([opt], blocks(opt, "destination_port_range"))
	is_number(o.min)
	is_number(o.max)
]

oci_port_ranges(r) := rs if {
	rs := oci_ranges(r)
	count(rs) > 0
} else := [[0, 65535]]



# Yandex Cloud security groups.
yandex_ranges(r) := [[p, p]] if {
	p := object.get(r, "port", -1)
	is_number(p)
	p >= 0
} else := [[f, t]] if {
	f := object.get(r, "from_port", -1)
	t := object.get(r, "to_port", -1)
	is_number(f)
	is_number(t)
	f >= 0
} else := [[0, 65535]]

yandex_rules(c, side) := [s |
	s := state(c, side)
	lower(object.get(s, "direction", "")) == "ingress"
] if c.type == "yandex_vpc_security_group_rule"

else := blocks(state(c, side), "ingress")


# DigitalOcean, Hetzner Cloud, Linode firewalls.



linode_ranges(ports) := [[0, 65535]] if ports in {"", null}

else := port_ranges(ports)

# Alibaba Cloud security group rules.

alicloud_ranges(p) := [[0, 65535]] if p in {"-1/-1", ""}

else := port_ranges(p)

