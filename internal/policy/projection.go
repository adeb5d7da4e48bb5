package policy

import (
	"fmt"
	"slices"
	stdstrings "strings"
	"sync"

	"github.com/gobwas/glob"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/stepgate/stepgate/internal/plan"
)

func (in *Input) changeTerm(c *plan.Change) (*ast.Term, error) {
	var before, after *ast.Term
	var err error
	if in.attrs != nil {
		keep := in.attrs.forType(c.Type)
		if before, err = in.terms.buildSelected(c.Before, keep); err == nil {
			after, err = in.terms.buildSelected(c.After, keep)
		}
	} else {
		before, after, err = in.terms.buildPair(c.Before, c.After)
	}
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	if in.attrs != nil {
		// The fields the built-in rules read (projectedFields). The tag
		// maps and reference attributes were read for tags and
		// containers; the rules read only those, so before and after
		// keep just the type's own attributes.
		tags, containers := in.tags(before, after), in.containers(c.Type, before, after)
		return ast.ObjectTerm(
			in.field("address", ast.StringTerm(c.Address)),
			in.field("type", in.terms.str([]byte(c.Type))),
			in.field("action", in.terms.str([]byte(c.Action))),
			in.field("before", in.attrs.own(c.Type, before)),
			in.field("after", in.attrs.own(c.Type, after)),
			in.field("tags", tags),
			in.field("containers", containers),
			in.field("unknown", in.unknown(c)),
			in.field("changed", in.changed(c)),
		), nil
	}
	index, err := valueTerm(c.Index)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	return ast.ObjectTerm(
		in.field("address", ast.StringTerm(c.Address)),
		in.field("previous_address", in.terms.str([]byte(c.PreviousAddress))),
		in.field("module_address", in.terms.str([]byte(c.ModuleAddress))),
		in.field("type", in.terms.str([]byte(c.Type))),
		in.field("name", in.terms.str([]byte(c.Name))),
		in.field("index", index),
		in.field("provider", in.terms.str([]byte(c.Provider))),
		in.field("mode", in.terms.str([]byte(c.Mode))),
		in.field("actions", in.actions(c.Actions)),
		in.field("action", in.terms.str([]byte(c.Action))),
		in.field("action_reason", in.terms.str([]byte(c.ActionReason))),
		in.field("importing", ast.InternedTerm(c.Importing)),
		in.field("before", before),
		in.field("after", after),
		in.field("after_unknown", in.stringList(c.AfterUnknown)),
		in.field("sensitive_paths", in.stringList(c.SensitivePaths)),
		in.field("replace_paths", in.stringList(c.ReplacePaths)),
		in.field("tags", in.tags(before, after)),
		in.field("containers", in.containers(c.Type, before, after)),
		in.field("unknown", in.unknown(c)),
		in.field("changed", in.changed(c)),
	), nil
}

// unknown lists the top-level attributes of a change's after value that
// are, wholly or in part, known only after apply ("policy" for
// "policy", "inline_policy" for "inline_policy[0].policy").
func (in *Input) unknown(c *plan.Change) *ast.Term {
	var names []string
	for _, p := range c.AfterUnknown {
		if i := stdstrings.IndexAny(p, ".["); i >= 0 {
			p = p[:i]
		}
		if p != "" && !slices.Contains(names, p) {
			names = append(names, p)
		}
	}
	return in.stringList(names)
}

// changed lists the top-level attributes an update changes: those whose
// text differs between before and after, those only one of them has, and
// those known only after apply. Other actions change everything, and have
// an empty list.
func (in *Input) changed(c *plan.Change) *ast.Term {
	if c.Action != plan.ActionUpdate {
		return emptyArray
	}
	bk, bv := topMembers(c.Before)
	ak, av := topMembers(c.After)
	var names []string
	add := func(k string) {
		if !slices.Contains(names, k) {
			names = append(names, k)
		}
	}
	for i, k := range ak {
		j := slices.Index(bk, k)
		if j < 0 || string(bv[j]) != string(av[i]) {
			if j < 0 && string(av[i]) == "null" {
				continue
			}
			add(k)
		}
	}
	for j, k := range bk {
		if !slices.Contains(ak, k) && string(bv[j]) != "null" && !slices.Contains(c.AfterUnknown, k) {
			add(k)
		}
	}
	for _, p := range c.AfterUnknown {
		if i := stdstrings.IndexAny(p, ".["); i >= 0 {
			p = p[:i]
		}
		if p != "" {
			add(p)
		}
	}
	slices.Sort(names)
	return in.stringList(names)
}

// projectedFields are the fields of a change that the input carries when
// only the built-in policy is loaded: those its rules read. A test checks
// that the built-in modules refer to no other field of a change, and that
// they never read input.reads, which is then left empty.
var projectedFields = []string{"address", "type", "action", "before", "after", "tags", "containers", "unknown", "changed"}

// contentAttributes are the attributes of before and after that the
// built-in rules identity.escalation, network.exposure and
// protection.removed read, whatever the type (policy documents, ingress
// rules, public access settings, safeguards). The attributes of
// protection_attributes in the configuration are added to them.
var contentAttributes = []string{
	// identity
	"policy", "assume_role_policy", "inline_policy", "managed_policy_arns", "policy_arn", "policyArn",
	"assumeRolePolicy", "inlinePolicies", "managedPolicyArns",
	"policy_name", "policy_document", "document", "policy_data", "policyData", "role", "role_definition_name",
	"role_definition_id", "roleDefinitionId", "roleDefinitionName", "member", "members", "permissions",
	"rule", "rules", "role_ref", "roleRef", "subject", "subjects", "metadata", "kubernetes_groups", "access_scope",
	"statements", "role_type", "permission", "access_level", "privileges", "all_privileges", "role_name",
	"permission_level", "policy_type", "access", "organization_access", "user_access_type", "scopes",
	"display_name", "kind", "manifest", "access_policies", "access_policy", "account_role_name", "admin_roles",
	"allow_cluster_create", "assume_role_policy_document", "grant", "roles", "managed_policy_arn",
	// network
	"ingress", "cidr_blocks", "ipv6_cidr_blocks", "from_port", "to_port", "protocol", "type", "cidr_ipv4",
	"cidr_ipv6", "ip_protocol", "security_rule", "direction", "source_address_prefix", "source_address_prefixes",
	"destination_port_range", "destination_port_ranges", "source_ranges", "allow", "allows", "disabled",
	"publicly_accessible", "publiclyAccessible", "acl", "block_public_acls", "block_public_policy",
	"ignore_public_acls", "restrict_public_buckets", "blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
	"restrictPublicBuckets", "container_access_type", "allow_nested_items_to_be_public",
	"allow_blob_public_access", "start_ip_address", "end_ip_address", "ingress_security_rules", "source",
	"tcp_options", "udp_options", "inbound_rule", "inbound", "inbound_policy", "cidr_ip", "port_range",
	"cidr_block", "v4_cidr_blocks", "v6_cidr_blocks", "port", "ports", "authorization_type", "principal",
	"source_ips", "source_addresses", "ipv4", "ipv6", "settings", "securityRules", "sourceRanges",
	"fromPort", "toPort", "cidrBlocks", "ipv6CidrBlocks", "access_type", "cidrIpv4", "cidrIpv6", "ipProtocol",
	"ipv6_cidr_ip", "ip_address", "predefined_acl",
	// protection (nested or top level; see also protection_attributes)
	"versioning", "versioning_configuration", "object_lock_enabled", "object_lock_configuration",
	"enable_logging", "is_enabled", "enable_key_rotation", "deletion_window_in_days", "rotation_period",
	"blob_properties", "enable",
}

// attributeSelector says which attributes of a resource's before and after
// values the built-in policy reads: the tag maps and the reference
// attributes of every type (from which the input's tags and containers
// are derived), the name attributes of container types, and the
// attributes of sensitive_when.
type attributeSelector struct {
	common  map[string]bool
	content map[string]bool            // read by the content rules (contentAttributes)
	protect map[string]bool            // the top-level attributes of protections, kept for every type
	byType  map[string]map[string]bool // types with attributes of their own

	// contentTypes and contentPatterns are the types whose values keep
	// the content attributes (the policy's content_types and
	// content_type_patterns); others keep only the protection ones.
	contentTypes    map[string]bool
	contentPatterns []*glob.Pattern
	mu              sync.Mutex
	isContent       map[string]bool // by type, remembered
}

// setContentTypes records which types keep the content attributes.
func (s *attributeSelector) setContentTypes(types, patterns []string) error {
	s.contentTypes = map[string]bool{}
	for _, t := range types {
		s.contentTypes[t] = true
	}
	for _, p := range patterns {
		g, err := glob.Compile(p)
		if err != nil {
			return fmt.Errorf("content type pattern %q: %w", p, err)
		}
		s.contentPatterns = append(s.contentPatterns, g)
	}
	s.isContent = map[string]bool{}
	return nil
}

// contentType says whether the values of type t keep the content
// attributes: every type when no content types were set.
func (s *attributeSelector) contentType(t string) bool {
	if s.contentTypes == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, seen := s.isContent[t]; seen {
		return ok
	}
	ok := s.contentTypes[t] || slices.ContainsFunc(s.contentPatterns, func(g *glob.Pattern) bool { return g.Match(t) })
	s.isContent[t] = ok
	return ok
}

func newAttributeSelector(cfg Config) *attributeSelector {
	s := &attributeSelector{common: map[string]bool{}, content: map[string]bool{}, protect: map[string]bool{}, byType: map[string]map[string]bool{}}
	for _, a := range contentAttributes {
		s.content[a] = true
	}
	for _, p := range cfg.Protections {
		top, _, _ := stdstrings.Cut(p.Attribute, ".")
		s.content[top] = true
		s.protect[top] = true
	}
	for _, a := range cfg.Production.TagAttributes {
		s.common[a] = true
	}
	for _, a := range cfg.Production.ReferenceAttributes {
		s.common[a] = true
	}
	own := func(t, a string) {
		if s.byType[t] == nil {
			s.byType[t] = map[string]bool{}
		}
		s.byType[t][a] = true
	}
	for t, attrs := range cfg.Production.NameAttributes {
		for _, a := range attrs {
			own(t, a)
		}
	}
	for t, conds := range cfg.SensitiveWhen {
		for a := range conds {
			own(t, a)
		}
	}
	return s
}

// forType returns whether to keep an attribute of a resource of type t.
func (s *attributeSelector) forType(t string) func([]byte) bool {
	own := s.byType[t]
	return func(k []byte) bool { return s.common[string(k)] || s.content[string(k)] || own[string(k)] }
}

// own returns state with only the attributes of type t's own
// (name_attributes, sensitive_when) and the content attributes; state
// itself when it is not an object (null).
func (s *attributeSelector) own(t string, state *ast.Term) *ast.Term {
	obj, ok := state.Value.(ast.Object)
	if !ok {
		return state
	}
	attrs := s.byType[t]
	if obj.Len() == 0 {
		return emptyObject
	}
	content := s.protect
	if s.contentType(t) {
		content = s.content
	}
	var items [][2]*ast.Term
	obj.Foreach(func(k, v *ast.Term) {
		if ks, ok := k.Value.(ast.String); ok && (attrs[string(ks)] || content[string(ks)]) {
			items = append(items, [2]*ast.Term{k, v})
		}
	})
	if len(items) == 0 {
		return emptyObject
	}
	return ast.ObjectTerm(items...)
}

// tags merges the tag maps of a change (production.tag_attributes: tags,
// tags_all, labels), before and after, into one object: each key in lower
// case, with every distinct string value it has, as written. Policies read
// one field instead of walking every map of every resource.
func (in *Input) tags(states ...*ast.Term) *ast.Term {
	var keys []string
	values := map[string][]*ast.Term{}
	for _, st := range states {
		obj, ok := st.Value.(ast.Object)
		if !ok {
			continue
		}
		addTag := func(k, v *ast.Term) {
			ks, ok := k.Value.(ast.String)
			if _, isStr := v.Value.(ast.String); !ok || !isStr {
				return
			}
			lk := stdstrings.ToLower(string(ks))
			add := func(lk string) {
				if _, seen := values[lk]; !seen {
					keys = append(keys, lk)
				}
				for _, have := range values[lk] {
					if have.Equal(v) {
						return
					}
				}
				values[lk] = append(values[lk], v)
			}
			add(lk)
			// An OCI defined tag is NAMESPACE.KEY: it counts under
			// its key too.
			if i := stdstrings.LastIndexByte(lk, '.'); i >= 0 && i < len(lk)-1 {
				add(lk[i+1:])
			}
		}
		readTags := func(t *ast.Term) {
			switch tags := t.Value.(type) {
			case ast.Object:
				tags.Foreach(func(k, v *ast.Term) {
					if inner, ok := v.Value.(ast.Object); ok {
						// OCI defined_tags as a map of namespaces.
						inner.Foreach(func(ik, iv *ast.Term) {
							if ns, ok := k.Value.(ast.String); ok {
								if iks, ok := ik.Value.(ast.String); ok {
									addTag(ast.StringTerm(string(ns)+"."+string(iks)), iv)
								}
							}
						})
						return
					}
					addTag(k, v)
				})
			case *ast.Array:
				// List-shaped tags: [{key, value}], as in an
				// autoscaling group's tag blocks.
				tags.Foreach(func(e *ast.Term) {
					o, ok := e.Value.(ast.Object)
					if !ok {
						return
					}
					k, v := o.Get(keyTerm0), o.Get(valueTerm0)
					if k == nil {
						k, v = o.Get(keyTermUpper), o.Get(valueTermUpper)
					}
					if k != nil && v != nil {
						addTag(k, v)
					}
				})
			}
		}
		for _, attr := range in.tagAttrs {
			if t := obj.Get(attr); t != nil {
				readTags(t)
			}
		}
		// Kubernetes: metadata[*].labels.
		eachMetadata(obj, func(md ast.Object) {
			if l := md.Get(labelsTerm); l != nil {
				readTags(l)
			}
		})
	}
	if len(keys) == 0 {
		return emptyObject
	}
	items := make([][2]*ast.Term, 0, len(keys))
	for _, k := range keys {
		items = append(items, [2]*ast.Term{in.terms.str([]byte(k)), ast.ArrayTerm(values[k]...)})
	}
	return ast.ObjectTerm(items...)
}

// eachMetadata calls fn with the Kubernetes metadata of a resource's
// values: the blocks of metadata (a list of one in the kubernetes
// provider) or the object itself (Pulumi, manifests).
func eachMetadata(obj ast.Object, fn func(ast.Object)) {
	md := obj.Get(metadataTerm)
	if md == nil {
		return
	}
	switch m := md.Value.(type) {
	case ast.Object:
		fn(m)
	case *ast.Array:
		m.Foreach(func(e *ast.Term) {
			if o, ok := e.Value.(ast.Object); ok {
				fn(o)
			}
		})
	}
}

// containers lists the distinct string values of the attributes that name
// where a resource lives (production.reference_attributes: the resource
// group, project or scope), before and after, and the Kubernetes namespace
// in its metadata (a namespace's own name, for a namespace).
func (in *Input) containers(typ string, states ...*ast.Term) *ast.Term {
	var out []*ast.Term
	add := func(v *ast.Term) {
		if v == nil {
			return
		}
		if _, ok := v.Value.(ast.String); !ok || slices.ContainsFunc(out, v.Equal) {
			return
		}
		out = append(out, v)
	}
	namespace := stdstrings.HasPrefix(typ, "kubernetes_namespace")
	for _, st := range states {
		obj, ok := st.Value.(ast.Object)
		if !ok {
			continue
		}
		for _, attr := range in.refAttrs {
			add(obj.Get(attr))
		}
		eachMetadata(obj, func(md ast.Object) {
			add(md.Get(namespaceTerm))
			if namespace {
				add(md.Get(nameTerm))
			}
		})
	}
	if len(out) == 0 {
		return emptyArray
	}
	return ast.ArrayTerm(out...)
}
