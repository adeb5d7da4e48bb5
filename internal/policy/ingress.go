package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/types"
)

// stepgate.ingress_openings(changes, sources, ports) reads the inbound
// rules of firewalls and security groups (AWS, Azure, Google Cloud, OCI,
// Yandex, DigitalOcean, Hetzner, Linode, Alibaba) before and after each
// change and returns what the change newly opens to the internet, as
// [address, "ADDRESS opens 22/tcp to 0.0.0.0/0"] pairs: rules from one of
// sources (compared in lower case) on a port outside ports, ICMP left out.
// The rule network.exposure names which types, sources and ports count;
// this function reads each provider's shape of a rule in one pass in Go,
// where the same in Rego cost a second on a plan of twenty thousand
// changes (bench/conftest/functions.rego holds the Rego version, which
// gives the same answers).
const ingressOpeningsName = "stepgate.ingress_openings"

var ingressOpeningsDecl = types.NewFunction(
	types.Args(
		types.Named("changes", anyCollection).Description("changes, as the input has them"),
		types.Named("sources", types.A).Description("sources that mean the internet, in lower case: 0.0.0.0/0, ::/0, *, internet..."),
		types.Named("ports", types.A).Description("ports that may be open to the internet"),
	),
	types.Named("openings", types.NewSet(types.NewArray([]types.Type{types.S, types.S}, nil))).
		Description("[address, reason] for each new opening"),
)

func ingressBuiltin() builtinFunc {
	return builtinFunc{
		decl: &ast.Builtin{Name: ingressOpeningsName, Decl: ingressOpeningsDecl},
		opt: rego.Function3(&rego.Function{Name: ingressOpeningsName, Description: "Reads what changes newly open to the internet.", Decl: ingressOpeningsDecl},
			func(_ rego.BuiltinContext, changes, sources, ports *ast.Term) (*ast.Term, error) {
				return ingressOpenings(changes.Value, sources.Value, ports.Value)
			}),
	}
}

type opening struct {
	proto  string
	lo, hi int
	source string
}

func (o opening) text() string {
	switch {
	case o.proto == "all":
		return "all ports"
	case o.lo <= 0 && o.hi >= 65535:
		return fmt.Sprintf("all %s ports", o.proto)
	case o.lo == o.hi:
		return fmt.Sprintf("%d/%s", o.lo, o.proto)
	}
	return fmt.Sprintf("%d-%d/%s", o.lo, o.hi, o.proto)
}

func ingressOpenings(changes, sourcesV, portsV ast.Value) (*ast.Term, error) {
	inSources, err := member(ingressOpeningsName, "sources", sourcesV)
	if err != nil {
		return nil, err
	}
	var ports []int
	if err := eachValue(portsV, func(t *ast.Term) {
		if n, ok := t.Value.(ast.Number); ok {
			if i, ok := n.Int(); ok {
				ports = append(ports, i)
			}
		}
	}); err != nil {
		return nil, fmt.Errorf("ports: %w", err)
	}
	public := func(src string) bool { return inSources(ast.StringTerm(strings.ToLower(src))) }
	counts := func(o opening) bool {
		if o.proto == "icmp" || o.proto == "icmpv6" {
			return false
		}
		lo, hi := max(o.lo, 0), min(o.hi, 65535)
		n := 0
		for _, p := range ports {
			if p >= lo && p <= hi {
				n++
			}
		}
		return hi-lo+1 > n
	}
	texts := func(c ast.Object, side string) map[string]bool {
		out := map[string]bool{}
		typ, _ := c.Get(ast.InternedTerm("type")).Value.(ast.String)
		for _, o := range ingressRules(string(typ), sideState(c, side)) {
			if public(o.source) && counts(o) {
				out[o.text()+" to "+o.source] = true
			}
		}
		return out
	}
	out := ast.NewSet()
	err = eachItem(ingressOpeningsName, changes, func(_ *ast.Term, c ast.Object) error {
		addr, ok := c.Get(ast.InternedTerm("address")).Value.(ast.String)
		if !ok {
			return nil
		}
		before := texts(c, "before")
		for t := range texts(c, "after") {
			if !before[t] {
				out.Add(ast.ArrayTerm(ast.NewTerm(addr), ast.StringTerm(string(addr)+" opens "+t)))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ast.NewTerm(out), nil
}

// eachValue calls fn with the elements of a set or an array.
func eachValue(v ast.Value, fn func(*ast.Term)) error {
	switch c := v.(type) {
	case ast.Set:
		c.Foreach(fn)
	case *ast.Array:
		c.Foreach(fn)
	default:
		return fmt.Errorf("%s, want a set or an array", valueName(v))
	}
	return nil
}

// sideState is a change's before or after as an object; empty for null,
// and for the before of a create, whatever the plan says.
func sideState(c ast.Object, side string) ast.Object {
	if side == "before" {
		if a, ok := c.Get(ast.InternedTerm("action")).Value.(ast.String); ok && a == "create" {
			return ast.NewObject()
		}
	}
	if t := c.Get(ast.StringTerm(side)); t != nil {
		if o, ok := t.Value.(ast.Object); ok {
			return o
		}
	}
	return ast.NewObject()
}

// get returns the first of the attributes that obj has, not null.
func get(obj ast.Object, names ...string) *ast.Term {
	for _, n := range names {
		if t := obj.Get(ast.StringTerm(n)); t != nil {
			if _, null := t.Value.(ast.Null); !null {
				return t
			}
		}
	}
	return nil
}

// list returns the elements of a list or set, or the value alone.
func list(t *ast.Term) []*ast.Term {
	if t == nil {
		return nil
	}
	switch v := t.Value.(type) {
	case *ast.Array:
		out := make([]*ast.Term, 0, v.Len())
		v.Foreach(func(e *ast.Term) { out = append(out, e) })
		return out
	case ast.Set:
		return v.Slice()
	case ast.Null:
		return nil
	}
	return []*ast.Term{t}
}

// blocks returns the objects of a nested attribute.
func blocks(obj ast.Object, names ...string) []ast.Object {
	var out []ast.Object
	for _, n := range names {
		for _, e := range list(obj.Get(ast.StringTerm(n))) {
			if o, ok := e.Value.(ast.Object); ok {
				out = append(out, o)
			}
		}
	}
	return out
}

func strOf(t *ast.Term) (string, bool) {
	if t == nil {
		return "", false
	}
	s, ok := t.Value.(ast.String)
	return string(s), ok
}

func strAttr(obj ast.Object, names ...string) string {
	s, _ := strOf(get(obj, names...))
	return s
}

func intOf(t *ast.Term) (int, bool) {
	if t == nil {
		return 0, false
	}
	n, ok := t.Value.(ast.Number)
	if !ok {
		return 0, false
	}
	return n.Int()
}

func strings_(ts []*ast.Term) []string {
	var out []string
	for _, t := range ts {
		if s, ok := strOf(t); ok {
			out = append(out, s)
		}
	}
	return out
}

// normProto names a protocol as the rules do: all, tcp, udp, icmp...
func normProto(t *ast.Term) string {
	var p string
	switch v := t.Value.(type) {
	case ast.String:
		p = string(v)
	default:
		p = v.String()
	}
	switch strings.ToLower(p) {
	case "-1", "all", "*", "any":
		return "all"
	case "6", "tcp":
		return "tcp"
	case "17", "udp":
		return "udp"
	case "1", "icmp", "58", "icmpv6", "icmp6", "ipv6-icmp":
		return "icmp"
	}
	return strings.ToLower(p)
}

// protoOf reads a protocol; def when it is missing ("" reads as null).
func protoOf(obj ast.Object, def string, names ...string) string {
	t := get(obj, names...)
	switch {
	case t == nil && def == "":
		t = ast.NullTerm()
	case t == nil:
		t = ast.StringTerm(def)
	}
	return normProto(t)
}

var everyPort = [][2]int{{0, 65535}}

func awsRanges(proto string, from, to *ast.Term) [][2]int {
	if proto == "all" {
		return everyPort
	}
	f, ok1 := intOf(from)
	t, ok2 := intOf(to)
	if ok1 && ok2 && f >= 0 {
		return [][2]int{{f, t}}
	}
	return everyPort
}

// portRangesOf reads ports as stepgate.port_ranges does.
func portRangesOf(t *ast.Term) [][2]int {
	var out [][2]int
	portRanges(t.Value).Value.(*ast.Array).Foreach(func(r *ast.Term) {
		a := r.Value.(*ast.Array)
		lo, _ := intOf(a.Elem(0))
		hi, _ := intOf(a.Elem(1))
		out = append(out, [2]int{lo, hi})
	})
	return out
}

func rulesFor(proto string, ranges [][2]int, sources []string) []opening {
	var out []opening
	for _, src := range sources {
		for _, r := range ranges {
			out = append(out, opening{proto: proto, lo: r[0], hi: r[1], source: src})
		}
	}
	return out
}

// ingressRules reads the inbound allow rules of one side of a change.
func ingressRules(typ string, s ast.Object) []opening {
	var out []opening
	switch typ {
	case "aws_security_group", "aws_default_security_group", "aws:ec2/securityGroup:SecurityGroup":
		for _, r := range blocks(s, "ingress") {
			if get(r, "protocol") == nil {
				continue
			}
			srcs := strings_(append(list(get(r, "cidr_blocks", "cidrBlocks")), list(get(r, "ipv6_cidr_blocks", "ipv6CidrBlocks"))...))
			proto := protoOf(r, "", "protocol")
			out = append(out, rulesFor(proto, awsRanges(proto, get(r, "from_port", "fromPort"), get(r, "to_port", "toPort")), srcs)...)
		}
	case "aws_security_group_rule", "aws:ec2/securityGroupRule:SecurityGroupRule":
		if strAttr(s, "type") != "ingress" || get(s, "protocol") == nil {
			return nil
		}
		srcs := strings_(append(list(get(s, "cidr_blocks", "cidrBlocks")), list(get(s, "ipv6_cidr_blocks", "ipv6CidrBlocks"))...))
		proto := protoOf(s, "", "protocol")
		out = rulesFor(proto, awsRanges(proto, get(s, "from_port", "fromPort"), get(s, "to_port", "toPort")), srcs)
	case "aws_vpc_security_group_ingress_rule", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
		var srcs []string
		for _, names := range [][]string{{"cidr_ipv4", "cidrIpv4"}, {"cidr_ipv6", "cidrIpv6"}} {
			if v, ok := strOf(get(s, names...)); ok {
				srcs = append(srcs, v)
			}
		}
		proto := protoOf(s, "", "ip_protocol", "ipProtocol")
		out = rulesFor(proto, awsRanges(proto, get(s, "from_port", "fromPort"), get(s, "to_port", "toPort")), srcs)
	case "azurerm_network_security_rule", "azurerm_network_security_group":
		rules := []ast.Object{s}
		if typ == "azurerm_network_security_group" {
			rules = blocks(s, "security_rule")
		}
		for _, r := range rules {
			if strings.ToLower(strAttr(r, "direction")) != "inbound" || strings.ToLower(strAttr(r, "access")) != "allow" {
				continue
			}
			srcs := strings_(append(list(get(r, "source_address_prefix")), list(get(r, "source_address_prefixes"))...))
			ports := append(list(get(r, "destination_port_range")), list(get(r, "destination_port_ranges"))...)
			out = append(out, rulesFor(protoOf(r, "*", "protocol"), portRangesOf(ast.ArrayTerm(ports...)), srcs)...)
		}
	case "google_compute_firewall", "gcp:compute/firewall:Firewall":
		dir := "INGRESS"
		if d, ok := strOf(get(s, "direction")); ok {
			dir = d
		}
		if strings.ToUpper(dir) == "EGRESS" || get(s, "disabled") != nil && get(s, "disabled").Value.Compare(ast.Boolean(true)) == 0 {
			return nil
		}
		srcs := strings_(list(get(s, "source_ranges", "sourceRanges")))
		for _, a := range blocks(s, "allow", "allows") {
			ports := list(get(a, "ports"))
			ranges := everyPort
			if len(ports) > 0 {
				ranges = portRangesOf(ast.ArrayTerm(ports...))
			}
			out = append(out, rulesFor(protoOf(a, "all", "protocol"), ranges, srcs)...)
		}
	case "oci_core_security_list", "oci_core_default_security_list", "oci_core_network_security_group_security_rule":
		rules := blocks(s, "ingress_security_rules")
		if typ == "oci_core_network_security_group_security_rule" {
			rules = nil
			if strings.ToUpper(strAttr(s, "direction")) == "INGRESS" {
				rules = []ast.Object{s}
			}
		}
		for _, r := range rules {
			src, ok := strOf(get(r, "source"))
			if !ok {
				continue
			}
			out = append(out, rulesFor(protoOf(r, "all", "protocol"), ociRanges(r), []string{src})...)
		}
	case "yandex_vpc_security_group", "yandex_vpc_default_security_group", "yandex_vpc_security_group_rule":
		rules := blocks(s, "ingress")
		if typ == "yandex_vpc_security_group_rule" {
			rules = nil
			if strings.ToLower(strAttr(s, "direction")) == "ingress" {
				rules = []ast.Object{s}
			}
		}
		for _, r := range rules {
			srcs := strings_(append(list(get(r, "v4_cidr_blocks")), list(get(r, "v6_cidr_blocks"))...))
			out = append(out, rulesFor(protoOf(r, "any", "protocol"), yandexRanges(r), srcs)...)
		}
	case "digitalocean_firewall":
		for _, r := range blocks(s, "inbound_rule") {
			proto := protoOf(r, "", "protocol")
			if proto == "icmp" {
				continue
			}
			pr := get(r, "port_range")
			if pr == nil {
				pr = ast.StringTerm("all")
			}
			out = append(out, rulesFor(proto, portRangesOf(pr), strings_(list(get(r, "source_addresses"))))...)
		}
	case "hcloud_firewall":
		for _, r := range blocks(s, "rule") {
			if strAttr(r, "direction") != "in" {
				continue
			}
			p := get(r, "port")
			if p == nil {
				p = ast.StringTerm("any")
			}
			out = append(out, rulesFor(protoOf(r, "", "protocol"), portRangesOf(p), strings_(list(get(r, "source_ips"))))...)
		}
	case "linode_firewall":
		for _, r := range blocks(s, "inbound") {
			if strings.ToUpper(strAttr(r, "action")) != "ACCEPT" {
				continue
			}
			ranges := everyPort
			if p := get(r, "ports"); p != nil {
				if ps, ok := strOf(p); !ok || ps != "" {
					ranges = portRangesOf(p)
				}
			}
			srcs := strings_(append(list(get(r, "ipv4")), list(get(r, "ipv6"))...))
			out = append(out, rulesFor(protoOf(r, "", "protocol"), ranges, srcs)...)
		}
	case "alicloud_security_group_rule":
		if strAttr(s, "type") != "ingress" {
			return nil
		}
		if p, ok := strOf(get(s, "policy")); ok && strings.ToLower(p) != "accept" {
			return nil
		}
		var srcs []string
		for _, n := range []string{"cidr_ip", "ipv6_cidr_ip"} {
			if v, ok := strOf(get(s, n)); ok {
				srcs = append(srcs, v)
			}
		}
		ranges := everyPort
		if p, ok := strOf(get(s, "port_range")); ok && p != "-1/-1" && p != "" {
			ranges = portRangesOf(ast.StringTerm(p))
		}
		out = rulesFor(protoOf(s, "all", "ip_protocol"), ranges, srcs)
	}
	return out
}

func ociRanges(r ast.Object) [][2]int {
	var out [][2]int
	for _, opt := range blocks(r, "tcp_options", "udp_options") {
		for _, o := range append([]ast.Object{opt}, blocks(opt, "destination_port_range")...) {
			lo, ok1 := intOf(get(o, "min"))
			hi, ok2 := intOf(get(o, "max"))
			if ok1 && ok2 {
				out = append(out, [2]int{lo, hi})
			}
		}
	}
	if len(out) == 0 {
		return everyPort
	}
	return out
}

func yandexRanges(r ast.Object) [][2]int {
	if p, ok := intOf(get(r, "port")); ok && p >= 0 {
		return [][2]int{{p, p}}
	}
	f, ok1 := intOf(get(r, "from_port"))
	t, ok2 := intOf(get(r, "to_port"))
	if ok1 && ok2 && f >= 0 {
		return [][2]int{{f, t}}
	}
	return everyPort
}

// stepgate.having(items, attrs) selects the changes whose after (or
// before, except for a create) has one of attrs, not null, or whose
// unknown list names one (known only after apply): a pass in Go
// that leaves the rules reading policy documents only the changes that
// have one.
const havingName = "stepgate.having"

var havingDecl = types.NewFunction(
	types.Args(
		types.Named("items", anyCollection).Description("changes, as the input has them"),
		types.Named("attrs", types.A).Description("a set, array or object (its keys) of attribute names"),
	),
	types.Named("selected", types.NewArray(nil, types.A)).Description("the changes with one of the attributes (or with it known only after apply), in order"),
)

// stepgate.except(items, key, values) selects the objects whose member
// key is not one of values (or that have no such member): the complement
// of stepgate.where.
const exceptName = "stepgate.except"

var exceptDecl = types.NewFunction(
	types.Args(
		types.Named("items", anyCollection).Description("objects, such as input.changes"),
		types.Named("key", types.S).Description("the member to look at, such as \"address\""),
		types.Named("values", types.A).Description("a set, array or object (its keys) of the values not wanted"),
	),
	types.Named("selected", types.NewArray(nil, types.A)).Description("the other items, in order"),
)

func selectBuiltins() []builtinFunc {
	return []builtinFunc{
		{
			decl: &ast.Builtin{Name: havingName, Decl: havingDecl},
			opt: rego.Function2(&rego.Function{Name: havingName, Description: "Selects the changes that have one of the attributes.", Decl: havingDecl},
				func(_ rego.BuiltinContext, items, attrs *ast.Term) (*ast.Term, error) {
					return having(items.Value, attrs.Value)
				}),
		},
		{
			decl: &ast.Builtin{Name: exceptName, Decl: exceptDecl},
			opt: rego.Function3(&rego.Function{Name: exceptName, Description: "Selects the objects whose member key is not one of the values.", Decl: exceptDecl},
				func(_ rego.BuiltinContext, items, key, values *ast.Term) (*ast.Term, error) {
					return except(items.Value, key.Value, values.Value)
				}),
		},
	}
}

func having(items, attrs ast.Value) (*ast.Term, error) {
	var names []*ast.Term
	switch a := attrs.(type) {
	case ast.Object:
		names = a.Keys()
	case ast.Set:
		names = a.Slice()
	case *ast.Array:
		a.Foreach(func(t *ast.Term) { names = append(names, t) })
	default:
		return nil, fmt.Errorf("attrs is %s, want a set, an array or an object", valueName(attrs))
	}
	has := func(s ast.Object) bool {
		for _, n := range names {
			if t := s.Get(n); t != nil {
				if _, null := t.Value.(ast.Null); !null {
					return true
				}
			}
		}
		return false
	}
	unknownTerm := ast.InternedTerm("unknown")
	unknown := func(c ast.Object) bool {
		u := c.Get(unknownTerm)
		if u == nil {
			return false
		}
		return anyOf(u, func(t *ast.Term) bool { return slices.ContainsFunc(names, t.Equal) })
	}
	var out []*ast.Term
	err := eachItem(havingName, items, func(t *ast.Term, c ast.Object) error {
		if has(sideState(c, "after")) || has(sideState(c, "before")) || unknown(c) {
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ast.ArrayTerm(out...), nil
}

func except(items, key, values ast.Value) (*ast.Term, error) {
	k, err := keyTerm(exceptName, key)
	if err != nil {
		return nil, err
	}
	in, err := member(exceptName, "values", values)
	if err != nil {
		return nil, err
	}
	var out []*ast.Term
	err = eachItem(exceptName, items, func(t *ast.Term, obj ast.Object) error {
		if v := obj.Get(k); v == nil || !anyOf(v, in) {
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ast.ArrayTerm(out...), nil
}
