// Command plangen writes a large, realistic Terraform plan in the JSON format
// of `terraform show -json` (format_version 1.2, Terraform 1.9.5), for
// benchmarking tools that read plans.
//
//	go run ./bench/plangen -changes 20000 -seed 1 -o big.json
//
// The output is a pure function of -changes and -seed. It is streamed: the
// generator keeps only the layout (modules and resource blocks, a few bytes
// per resource) in memory and regenerates each resource's values from its
// own random stream whenever a section needs them, so its memory stays
// small whatever the plan size.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"sort"
	"strings"
)

func main() {
	changes := flag.Int("changes", 20000, "number of resource_changes to write")
	seed := flag.Uint64("seed", 1, "random seed; the same seed gives the same plan")
	out := flag.String("o", "", "output file (default stdout)")
	stats := flag.Bool("stats", false, "print the size of each section to stderr")
	flag.Parse()
	if *changes < 0 {
		fmt.Fprintln(os.Stderr, "plangen: -changes must be >= 0")
		os.Exit(2)
	}
	var w io.Writer = os.Stdout
	var f *os.File
	if *out != "" {
		var err error
		if f, err = os.Create(*out); err != nil {
			fmt.Fprintln(os.Stderr, "plangen:", err)
			os.Exit(1)
		}
		w = f
	}
	st, err := generate(w, *changes, *seed)
	if err == nil && f != nil {
		err = f.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "plangen:", err)
		os.Exit(1)
	}
	if *stats {
		st.print(os.Stderr)
	}
}

// ---- layout ----

type module struct {
	addr     string // module.app_3, module.app_3.module.db, "" for the root
	call     *call
	key      any // for_each key of the module instance, or nil
	parent   *module
	children []*module
	blocks   []*block

	prefix, env, team, costCenter, service          string
	region, account, subscription, tenant, location string
	project, gcpRegion, zone, namespace, rg         string
	fresh                                           bool // a module added in this plan: everything is created
}

type block struct {
	t     *rtype
	name  string
	count int      // instances, when counted
	each  []string // instance keys, when for_each
	first int      // global index of the first instance
	n     int      // instances actually written (the last block may be cut)
	spec  *bspec
}

// key returns the instance key of the j-th instance of the block.
func (b *block) key(j int) any {
	switch {
	case b.each != nil:
		return b.each[j]
	case b.count > 0:
		return j
	}
	return nil
}

// call is one module call in the configuration. Calls with for_each have
// several module instances that share the call's blocks.
type call struct {
	name     string
	kind     string
	source   string
	keys     []string // for_each keys, nil for a single instance
	specs    []*bspec // blocks, with their count/keys decided
	children []*call
	parent   *call
}

type bspec struct {
	typ, name string
	keys      string // "", "count", "each"
	lo, hi    int
	choices   []string
	count     int      // decided count
	each      []string // decided keys
}

var (
	ports    = []string{"http", "https", "ssh", "metrics", "grpc", "postgres", "redis", "health"}
	buckets  = []string{"logs", "data", "backup", "archive", "media", "exports", "artifacts", "reports"}
	services = []string{"api", "web", "worker", "scheduler", "gateway", "billing", "auth", "search", "notifier", "ingest", "ledger", "reporting"}
	tenants  = []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell", "soylent", "wonka"}
	gcpRoles = []string{"roles/storage.objectViewer", "roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/pubsub.publisher",
		"roles/cloudsql.client", "roles/secretmanager.secretAccessor", "roles/bigquery.dataViewer", "roles/iam.serviceAccountUser"}
	principals = []string{"platform-admins", "sre", "data-readers", "ci-deployer", "billing-app", "auditors"}
	teams      = []string{"payments", "platform", "data", "identity", "growth", "sre", "billing", "search"}
	awsRegions = []string{"us-east-1", "us-west-2", "eu-west-1", "eu-central-1"}
	azLocs     = []string{"westeurope", "northeurope", "eastus2"}
	gcpRegions = []string{"europe-west1", "us-central1", "europe-west4"}
)

var templates = map[string][]bspec{
	"root": {
		{typ: "aws_s3_bucket", name: "terraform_logs"},
		{typ: "aws_iam_role", name: "ci_deployer"},
		{typ: "aws_iam_policy", name: "ci_deployer"},
		{typ: "aws_kms_key", name: "state"},
		{typ: "azurerm_resource_group", name: "shared"},
		{typ: "google_project_iam_member", name: "ci", keys: "each", lo: 2, hi: 4, choices: gcpRoles},
		{typ: "kubernetes_namespace", name: "platform", keys: "each", lo: 2, hi: 4, choices: services},
		{typ: "aws_route53_record", name: "apex", keys: "count", lo: 1, hi: 3},
	},
	"app": {
		{typ: "aws_iam_policy_document", name: "app"},
		{typ: "aws_instance", name: "web", keys: "count", lo: 1, hi: 4},
		{typ: "aws_security_group", name: "web"},
		{typ: "aws_security_group_rule", name: "ingress", keys: "each", lo: 3, hi: 8, choices: ports},
		{typ: "aws_iam_role", name: "app"},
		{typ: "aws_iam_policy", name: "app"},
		{typ: "aws_iam_role_policy_attachment", name: "app"},
		{typ: "aws_cloudwatch_log_group", name: "app", keys: "each", lo: 1, hi: 3, choices: services},
		{typ: "aws_s3_bucket", name: "assets", keys: "each", lo: 1, hi: 3, choices: buckets},
		{typ: "aws_s3_bucket_public_access_block", name: "assets", keys: "each", lo: 1, hi: 3, choices: buckets},
		{typ: "aws_lambda_function", name: "worker", keys: "count", lo: 1, hi: 3},
		{typ: "aws_cloudwatch_metric_alarm", name: "worker_errors", keys: "count", lo: 1, hi: 4},
		{typ: "aws_sqs_queue", name: "jobs", keys: "each", lo: 1, hi: 3, choices: []string{"jobs", "events", "dlq", "emails"}},
		{typ: "aws_ebs_volume", name: "data", keys: "count", lo: 0, hi: 3},
		{typ: "aws_route53_record", name: "app", keys: "count", lo: 1, hi: 5},
		{typ: "aws_dynamodb_table", name: "sessions"},
	},
	"db": {
		{typ: "aws_kms_key", name: "db"},
		{typ: "aws_db_instance", name: "main", keys: "count", lo: 1, hi: 2},
		{typ: "aws_secretsmanager_secret", name: "db_credentials"},
		{typ: "aws_security_group", name: "db"},
		{typ: "aws_cloudwatch_log_group", name: "db", keys: "each", lo: 1, hi: 2, choices: []string{"postgresql", "upgrade"}},
	},
	"azure": {
		{typ: "azurerm_resource_group", name: "main"},
		{typ: "azurerm_storage_account", name: "sa", keys: "each", lo: 1, hi: 3, choices: buckets},
		{typ: "azurerm_storage_container", name: "container", keys: "each", lo: 1, hi: 4, choices: buckets},
		{typ: "azurerm_role_assignment", name: "access", keys: "each", lo: 3, hi: 6, choices: principals},
		{typ: "azurerm_network_security_group", name: "main"},
		{typ: "azurerm_network_security_rule", name: "rule", keys: "each", lo: 3, hi: 8, choices: ports},
		{typ: "azurerm_subnet", name: "subnet", keys: "each", lo: 1, hi: 3, choices: []string{"app", "data", "private-endpoints"}},
		{typ: "azurerm_linux_virtual_machine", name: "vm", keys: "count", lo: 1, hi: 3},
		{typ: "azurerm_key_vault", name: "kv"},
		{typ: "azurerm_mssql_database", name: "db", keys: "count", lo: 0, hi: 2},
	},
	"gcp": {
		{typ: "google_service_account", name: "workload"},
		{typ: "google_project_iam_member", name: "workload", keys: "each", lo: 3, hi: 8, choices: gcpRoles},
		{typ: "google_compute_instance", name: "node", keys: "count", lo: 1, hi: 3},
		{typ: "google_compute_disk", name: "data", keys: "count", lo: 0, hi: 3},
		{typ: "google_compute_firewall", name: "allow", keys: "each", lo: 1, hi: 4, choices: ports},
		{typ: "google_storage_bucket", name: "bucket", keys: "each", lo: 1, hi: 3, choices: buckets},
		{typ: "google_pubsub_topic", name: "events", keys: "each", lo: 1, hi: 3, choices: []string{"orders", "invoices", "audit", "metrics"}},
		{typ: "google_kms_crypto_key", name: "key"},
		{typ: "google_sql_database_instance", name: "main", keys: "count", lo: 0, hi: 1},
	},
	"k8s": {
		{typ: "kubernetes_namespace", name: "tenant"},
		{typ: "kubernetes_service_account", name: "svc", keys: "each", lo: 1, hi: 4, choices: services},
		{typ: "kubernetes_deployment", name: "svc", keys: "each", lo: 1, hi: 4, choices: services},
		{typ: "kubernetes_service", name: "svc", keys: "each", lo: 1, hi: 4, choices: services},
		{typ: "kubernetes_config_map", name: "svc", keys: "each", lo: 1, hi: 4, choices: services},
		{typ: "kubernetes_secret", name: "svc", keys: "each", lo: 1, hi: 3, choices: services},
		{typ: "kubernetes_role_binding", name: "svc"},
		{typ: "kubernetes_ingress_v1", name: "public", keys: "count", lo: 0, hi: 1},
	},
}

var sources = map[string]string{
	"app":   "./modules/aws-app",
	"db":    "./modules/aws-db",
	"azure": "app.terraform.io/acme/platform/azurerm",
	"gcp":   "./modules/gcp-analytics",
	"k8s":   "./modules/k8s-tenant",
}

// subset picks n distinct elements of choices, in their order.
func subset(r *rand.Rand, choices []string, n int) []string {
	if n > len(choices) {
		n = len(choices)
	}
	idx := r.Perm(len(choices))[:n]
	sort.Ints(idx)
	out := make([]string, n)
	for i, j := range idx {
		out[i] = choices[j]
	}
	return out
}

func decide(r *rand.Rand, kind string) []*bspec {
	var out []*bspec
	for _, t := range templates[kind] {
		s := t
		if types[s.typ] == nil {
			panic("unknown type " + s.typ)
		}
		n := s.lo + r.IntN(s.hi-s.lo+1)
		switch s.keys {
		case "count":
			if n == 0 {
				continue
			}
			s.count = n
		case "each":
			s.each = subset(r, s.choices, n)
		}
		out = append(out, &s)
	}
	return out
}

type layout struct {
	root  *module
	calls []*call // top-level calls, in order
	insts []instRef
}

type instRef struct {
	b *block
	m *module
	j int32 // instance number within the block
}

func pickEnv(r *rand.Rand) string {
	x := r.IntN(100)
	switch {
	case x < 35:
		return "dev"
	case x < 68:
		return "staging"
	case x < 78:
		return "sandbox"
	case x < 88:
		return "prod"
	case x < 94:
		return "production"
	default:
		return "Production"
	}
}

func newModule(r *rand.Rand, addr string, c *call, key any, parent *module) *module {
	m := &module{addr: addr, call: c, key: key, parent: parent}
	m.env = pickEnv(r)
	m.team = teams[r.IntN(len(teams))]
	m.costCenter = fmt.Sprintf("CC-%04d", 1000+r.IntN(9000))
	m.service = services[r.IntN(len(services))]
	m.region = awsRegions[r.IntN(len(awsRegions))]
	m.account = fmt.Sprintf("%012d", 100000000000+r.Int64N(800000000000))
	m.subscription = fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", r.Uint32(), r.IntN(65536), r.IntN(4096), r.IntN(4096), r.Int64N(1<<48))
	m.tenant = fmt.Sprintf("%08x-%04x-4%03x-b%03x-%012x", r.Uint32(), r.IntN(65536), r.IntN(4096), r.IntN(4096), r.Int64N(1<<48))
	m.location = azLocs[r.IntN(len(azLocs))]
	m.gcpRegion = gcpRegions[r.IntN(len(gcpRegions))]
	m.zone = m.gcpRegion + "-" + []string{"a", "b", "c"}[r.IntN(3)]
	name := "root"
	if c != nil {
		name = strings.ReplaceAll(c.name, "_", "-")
	}
	if k, ok := key.(string); ok {
		name += "-" + k
		m.namespace = k
	} else {
		m.namespace = m.service
	}
	m.prefix = name
	short := map[string]string{"dev": "dev", "staging": "stg", "sandbox": "sbx"}[m.env]
	if short == "" {
		short = "prd"
	}
	m.project = "acme-" + m.team + "-" + short + fmt.Sprintf("-%04d", r.IntN(10000))
	m.rg = "rg-" + name + "-" + short
	m.fresh = parent != nil && r.IntN(100) < 6
	if parent != nil && parent.fresh {
		m.fresh = true
	}
	return m
}

func (l *layout) fill(m *module, specs []*bspec, remaining *int) {
	for _, s := range specs {
		if *remaining == 0 {
			return
		}
		b := &block{t: types[s.typ], name: s.name, count: s.count, each: s.each, first: len(l.insts), spec: s}
		total := 1
		if s.keys == "count" {
			total = s.count
		} else if s.keys == "each" {
			total = len(s.each)
		}
		if total == 0 {
			continue
		}
		b.n = min(total, *remaining)
		*remaining -= b.n
		for j := 0; j < b.n; j++ {
			l.insts = append(l.insts, instRef{b: b, m: m, j: int32(j)})
		}
		m.blocks = append(m.blocks, b)
	}
}

func newLayout(n int, seed uint64) *layout {
	r := rand.New(rand.NewPCG(seed, 0x1a7047))
	l := &layout{}
	remaining := n
	l.root = newModule(r, "", nil, nil, nil)
	l.fill(l.root, decide(r, "root"), &remaining)
	counters := map[string]int{}
	for remaining > 0 {
		x := r.IntN(100)
		kind := "app"
		switch {
		case x < 45:
		case x < 67:
			kind = "azure"
		case x < 89:
			kind = "gcp"
		default:
			kind = "k8s"
		}
		c := &call{kind: kind, source: sources[kind], specs: decide(r, kind)}
		i := counters[kind]
		counters[kind]++
		switch kind {
		case "app":
			c.name = fmt.Sprintf("app_%d", i)
			if r.IntN(2) == 0 {
				c.children = append(c.children, &call{name: "db", kind: "db", source: sources["db"], specs: decide(r, "db"), parent: c})
			}
		case "azure":
			c.name = fmt.Sprintf("platform_%d", i)
		case "gcp":
			c.name = fmt.Sprintf("analytics_%d", i)
		case "k8s":
			c.name = fmt.Sprintf("tenants_%d", i)
			c.keys = subset(r, tenants, 2+r.IntN(2))
		}
		l.calls = append(l.calls, c)
		keys := []any{nil}
		if c.keys != nil {
			keys = keys[:0]
			for _, k := range c.keys {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			if remaining == 0 {
				break
			}
			addr := "module." + c.name
			if k != nil {
				addr += fmt.Sprintf("[%q]", k)
			}
			m := newModule(r, addr, c, k, l.root)
			l.root.children = append(l.root.children, m)
			l.fill(m, c.specs, &remaining)
			for _, cc := range c.children {
				if remaining == 0 {
					break
				}
				child := newModule(r, addr+".module."+cc.name, cc, nil, m)
				child.fresh = child.fresh || m.fresh
				m.children = append(m.children, child)
				l.fill(child, cc.specs, &remaining)
			}
		}
	}
	return l
}

// ---- instances ----

type instance struct {
	m       *module
	b       *block
	key     any
	addr    string
	actions []string
	reason  string
	change  changeJSON
	// prior is the value in prior_state (nil if the resource does not
	// exist yet); planned is the value in planned_values (nil if it is
	// deleted).
	prior, planned         map[string]any
	priorSens, plannedSens any
	dependsOn              []string
}

type changeJSON struct {
	Actions         []string `json:"actions"`
	Before          any      `json:"before"`
	After           any      `json:"after"`
	AfterUnknown    any      `json:"after_unknown"`
	BeforeSensitive any      `json:"before_sensitive"`
	AfterSensitive  any      `json:"after_sensitive"`
	ReplacePaths    [][]any  `json:"replace_paths,omitempty"`
}

type rcJSON struct {
	Address       string     `json:"address"`
	ModuleAddress string     `json:"module_address,omitempty"`
	Mode          string     `json:"mode"`
	Type          string     `json:"type"`
	Name          string     `json:"name"`
	Index         any        `json:"index,omitempty"`
	ProviderName  string     `json:"provider_name"`
	Change        changeJSON `json:"change"`
	ActionReason  string     `json:"action_reason,omitempty"`
}

type stateResJSON struct {
	Address         string   `json:"address"`
	Mode            string   `json:"mode"`
	Type            string   `json:"type"`
	Name            string   `json:"name"`
	Index           any      `json:"index,omitempty"`
	ProviderName    string   `json:"provider_name"`
	SchemaVersion   int      `json:"schema_version"`
	Values          any      `json:"values"`
	SensitiveValues any      `json:"sensitive_values"`
	DependsOn       []string `json:"depends_on,omitempty"`
}

func blockAddr(m *module, b *block) string {
	a := b.t.name + "." + b.name
	if b.t.data {
		a = "data." + a
	}
	if m.addr != "" {
		a = m.addr + "." + a
	}
	return a
}

func instAddr(m *module, b *block, key any) string {
	a := blockAddr(m, b)
	switch k := key.(type) {
	case int:
		a += fmt.Sprintf("[%d]", k)
	case string:
		a += fmt.Sprintf("[%q]", k)
	}
	return a
}

func mode(t *rtype) string {
	if t.data {
		return "data"
	}
	return "managed"
}

// sensAsBool mirrors Terraform's SensitiveAsBool for an unmarked value:
// containers keep their shape, known leaves are false and dropped from
// objects.
func sensAsBool(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			if s := sensAsBool(e); s != false {
				out[k] = s
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = sensAsBool(e)
		}
		return out
	}
	return false
}

// markers builds a before_sensitive/after_sensitive/after_unknown object:
// true for the named top-level attributes, container shapes elsewhere.
func markers(vals map[string]any, marked map[string]bool) map[string]any {
	out := map[string]any{}
	for k, v := range vals {
		if marked[k] {
			out[k] = true
			continue
		}
		if s := sensAsBool(v); s != false {
			out[k] = s
		}
	}
	return out
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

var defaultTags = map[string]any{"ManagedBy": "terraform"}

// finish fills in the derived attributes: tags_all, effective labels.
func finish(vals map[string]any) {
	if tags, ok := vals["tags"].(map[string]any); ok {
		if _, has := vals["tags_all"]; has {
			all := copyMap(defaultTags)
			for k, v := range tags {
				all[k] = v
			}
			vals["tags_all"] = all
		}
	}
	if labels, ok := vals["labels"].(map[string]any); ok {
		if _, has := vals["effective_labels"]; has {
			eff := copyMap(labels)
			eff["goog-terraform-provisioned"] = "true"
			vals["effective_labels"] = eff
			vals["terraform_labels"] = copyMap(eff)
		}
	}
}

type gen struct {
	seed uint64
	l    *layout
}

// build regenerates instance i. It is a pure function of (seed, i).
func (gn *gen) build(i int) *instance {
	ref := gn.l.insts[i]
	m, b := ref.m, ref.b
	key := b.key(int(ref.j))
	r := rand.New(rand.NewPCG(gn.seed, 0x9e3779b97f4a7c15^uint64(i)))
	g := &G{r: r, m: m, b: b, key: key}
	t := b.t
	vals := make(map[string]any, len(t.attrs))
	computed := map[string]bool{}
	sensitive := map[string]bool{}
	for _, a := range t.attrs {
		vals[a.n] = a.g(g)
		if a.f&fComputed != 0 {
			computed[a.n] = true
		}
		if a.f&fSensitive != 0 {
			sensitive[a.n] = true
		}
	}
	finish(vals)
	if _, ok := vals["tags_all"]; ok {
		computed["tags_all"] = true
	}

	in := &instance{m: m, b: b, key: key, addr: instAddr(m, b, key)}
	if r.IntN(10) < 2 && len(m.blocks) > 0 && m.blocks[0] != b {
		// Depend on the first resource of the module.
		in.dependsOn = []string{blockAddr(m, m.blocks[0])}
	}

	x := r.IntN(1000)
	act := "no-op"
	switch {
	case t.data:
		act = "read"
	case m.fresh:
		act = "create"
	case x < 330:
	case x < 580:
		act = "update"
	case x < 880:
		act = "create"
	case x < 935:
		act = "delete"
	default:
		act = "replace"
	}

	// Attributes that an update may change, and that force replacement.
	var mutable, forceNew []A
	for _, a := range t.attrs {
		switch {
		case a.f&(fKeep|fComputed) != 0:
		case a.f&fForceNew != 0:
			forceNew = append(forceNew, a)
		case a.n != "tags_all" && a.n != "timeouts" && a.n != "id":
			mutable = append(mutable, a)
		}
	}
	if act == "replace" && len(forceNew) == 0 {
		act = "update"
	}
	if act == "update" && len(mutable) == 0 {
		act = "no-op"
	}

	known := func() map[string]any { // after, with unknown (computed) values null
		out := copyMap(vals)
		for k := range computed {
			if _, ok := out[k]; ok && k != "tags_all" {
				out[k] = nil
			}
		}
		return out
	}
	omitUnknown := func() map[string]any {
		out := copyMap(vals)
		for k := range computed {
			if k != "tags_all" {
				delete(out, k)
			}
		}
		return out
	}
	unknown := map[string]bool{}
	for k := range computed {
		if k != "tags_all" {
			unknown[k] = true
		}
	}
	sensOf := func(v map[string]any) map[string]any { return markers(v, sensitive) }
	c := &in.change
	switch act {
	case "no-op":
		c.Actions = []string{"no-op"}
		c.Before, c.After = vals, vals
		c.AfterUnknown = markers(vals, nil)
		c.BeforeSensitive, c.AfterSensitive = sensOf(vals), sensOf(vals)
		in.prior, in.planned = vals, vals
	case "read":
		c.Actions = []string{"read"}
		in.reason = "read_because_dependency_pending"
		if r.IntN(2) == 0 {
			in.reason = "read_because_config_unknown"
		}
		c.Before = nil
		c.After = known()
		c.AfterUnknown = markers(vals, unknown)
		c.BeforeSensitive, c.AfterSensitive = false, sensOf(vals)
		in.prior, in.planned = vals, omitUnknown()
	case "create":
		c.Actions = []string{"create"}
		c.Before, c.After = nil, known()
		c.AfterUnknown = markers(vals, unknown)
		c.BeforeSensitive, c.AfterSensitive = false, sensOf(vals)
		in.planned = omitUnknown()
	case "delete":
		c.Actions = []string{"delete"}
		c.Before, c.After = vals, nil
		c.AfterUnknown = map[string]any{}
		c.BeforeSensitive, c.AfterSensitive = sensOf(vals), false
		in.prior = vals
		switch r.IntN(3) {
		case 0:
			in.reason = "delete_because_no_resource_config"
		case 1:
			if b.count > 0 || b.each != nil {
				in.reason = "delete_because_count_index"
				if b.each != nil {
					in.reason = "delete_because_each_key"
				}
			}
		}
	case "update":
		before := copyMap(vals)
		for n := 1 + r.IntN(2); n > 0; n-- {
			a := mutable[r.IntN(len(mutable))]
			old := a.g(g)
			if reflect.DeepEqual(old, vals[a.n]) {
				old = perturb(old)
			}
			before[a.n] = old
		}
		if tags, ok := vals["tags"].(map[string]any); ok && r.IntN(2) == 0 {
			// The commonest update of all: a tag was added or changed.
			bt := copyMap(tags)
			if r.IntN(2) == 0 {
				bt["CostCenter"] = fmt.Sprintf("CC-%04d", 1000+r.IntN(9000))
			} else {
				delete(bt, "Team")
			}
			before["tags"] = bt
			finish(before)
		}
		c.Actions = []string{"update"}
		c.Before, c.After = before, vals
		c.AfterUnknown = markers(vals, nil)
		c.BeforeSensitive, c.AfterSensitive = sensOf(before), sensOf(vals)
		in.prior, in.planned = before, vals
	case "replace":
		before := copyMap(vals)
		a := forceNew[r.IntN(len(forceNew))]
		old := a.g(g)
		if reflect.DeepEqual(old, vals[a.n]) {
			old = perturb(old)
		}
		before[a.n] = old
		c.Actions = []string{"delete", "create"}
		if r.IntN(5) == 0 {
			c.Actions = []string{"create", "delete"}
		}
		in.reason = "replace_because_cannot_update"
		c.ReplacePaths = [][]any{{a.n}}
		if r.IntN(10) == 0 {
			in.reason = "replace_because_tainted"
			c.ReplacePaths = nil
		}
		c.Before, c.After = before, known()
		c.AfterUnknown = markers(vals, unknown)
		c.BeforeSensitive, c.AfterSensitive = sensOf(before), sensOf(vals)
		in.prior, in.planned = before, omitUnknown()
	}
	in.actions = c.Actions
	if in.prior != nil {
		in.priorSens = sensOf(in.prior)
	}
	if in.planned != nil {
		in.plannedSens = sensOf(in.planned)
	}
	return in
}

// perturb returns a value different from v, for an update whose
// regenerated value happened to be equal.
func perturb(v any) any {
	switch v := v.(type) {
	case string:
		return v + "-old"
	case int:
		return v + 1
	case bool:
		return !v
	case nil:
		return "legacy"
	case []any:
		return append([]any{}, append(v, "legacy")...)
	case map[string]any:
		m := copyMap(v)
		m["legacy"] = "true"
		return m
	}
	return nil
}

// ---- output ----

// counter counts the bytes written through it.
type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type stats struct {
	sections []string
	sizes    map[string]int64
	changes  int
	total    int64
}

func (s *stats) print(w io.Writer) {
	fmt.Fprintf(w, "resource_changes: %d, total: %.1f MB\n", s.changes, float64(s.total)/1e6)
	for _, k := range s.sections {
		fmt.Fprintf(w, "  %-22s %10.2f MB  %5.1f%%\n", k, float64(s.sizes[k])/1e6, 100*float64(s.sizes[k])/float64(s.total))
	}
}

type writer struct {
	bw  *bufio.Writer
	cnt *counter
	err error
}

func (w *writer) raw(s string) {
	if w.err == nil {
		_, w.err = w.bw.WriteString(s)
	}
}

func (w *writer) json(v any) {
	if w.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		w.err = err
		return
	}
	_, w.err = w.bw.Write(b)
}

func (w *writer) offset() int64 {
	return w.cnt.n + int64(w.bw.Buffered())
}

func generate(out io.Writer, n int, seed uint64) (*stats, error) {
	cnt := &counter{w: out}
	w := &writer{bw: bufio.NewWriterSize(cnt, 1<<16), cnt: cnt}
	gn := &gen{seed: seed, l: newLayout(n, seed)}
	st := &stats{sizes: map[string]int64{}, changes: n}
	section := func(name string, body func()) {
		start := w.offset()
		if len(st.sections) > 0 {
			w.raw(",")
		}
		w.raw(`"` + name + `":`)
		body()
		st.sections = append(st.sections, name)
		st.sizes[name] = w.offset() - start
	}
	r := rand.New(rand.NewPCG(seed, 0x0b5e55ed))

	w.raw("{")
	section("format_version", func() { w.raw(`"1.2"`) })
	section("terraform_version", func() { w.raw(`"1.9.5"`) })
	section("variables", func() { w.json(variables(gn.l)) })
	section("planned_values", func() {
		w.raw(`{"outputs":`)
		w.json(outputs(gn.l, r, true))
		w.raw(`,"root_module":`)
		gn.writeModule(w, gn.l.root, func(in *instance) (map[string]any, any) { return in.planned, in.plannedSens })
		w.raw("}")
	})
	section("resource_drift", func() { gn.writeDrift(w) })
	section("resource_changes", func() {
		w.raw("[")
		for i := range gn.l.insts {
			if i > 0 {
				w.raw(",")
			}
			w.json(gn.rc(gn.build(i)))
		}
		w.raw("]")
	})
	section("output_changes", func() { w.json(outputChanges(gn.l, r)) })
	section("prior_state", func() {
		w.raw(`{"format_version":"1.0","terraform_version":"1.9.5","values":{"outputs":`)
		w.json(outputs(gn.l, r, false))
		w.raw(`,"root_module":`)
		gn.writeModule(w, gn.l.root, func(in *instance) (map[string]any, any) { return in.prior, in.priorSens })
		w.raw("}}")
	})
	section("configuration", func() { gn.writeConfig(w) })
	section("relevant_attributes", func() { w.json(relevantAttributes(gn.l)) })
	section("checks", func() { w.json(checks(gn.l)) })
	section("timestamp", func() {
		w.raw(fmt.Sprintf(`"2025-%02d-%02dT%02d:%02d:%02dZ"`, 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60)))
	})
	section("applyable", func() { w.raw("true") })
	section("complete", func() { w.raw("true") })
	section("errored", func() { w.raw("false") })
	w.raw("}\n")
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	st.total = cnt.n
	return st, w.err
}

func (gn *gen) rc(in *instance) *rcJSON {
	return &rcJSON{
		Address:       in.addr,
		ModuleAddress: in.m.addr,
		Mode:          mode(in.b.t),
		Type:          in.b.t.name,
		Name:          in.b.name,
		Index:         in.key,
		ProviderName:  providerSource[in.b.t.provider],
		Change:        in.change,
		ActionReason:  in.reason,
	}
}

// writeModule writes a module of planned_values or prior_state, with its
// resources and child modules. Resources for which vals returns nil are
// left out: created resources from the prior state, deleted ones from the
// planned values.
func (gn *gen) writeModule(w *writer, m *module, vals func(*instance) (map[string]any, any)) {
	w.raw(`{"resources":[`)
	first := true
	for _, b := range m.blocks {
		for j := 0; j < b.n; j++ {
			in := gn.build(b.first + j)
			v, s := vals(in)
			if v == nil {
				continue
			}
			if !first {
				w.raw(",")
			}
			first = false
			w.json(&stateResJSON{
				Address:         in.addr,
				Mode:            mode(b.t),
				Type:            b.t.name,
				Name:            b.name,
				Index:           in.key,
				ProviderName:    providerSource[b.t.provider],
				SchemaVersion:   b.t.schema,
				Values:          v,
				SensitiveValues: s,
				DependsOn:       in.dependsOn,
			})
		}
	}
	w.raw("]")
	if m.addr != "" {
		w.raw(`,"address":`)
		w.json(m.addr)
	}
	if len(m.children) > 0 {
		w.raw(`,"child_modules":[`)
		for i, c := range m.children {
			if i > 0 {
				w.raw(",")
			}
			gn.writeModule(w, c, vals)
		}
		w.raw("]")
	}
	w.raw("}")
}

// writeDrift writes a few resources that changed outside Terraform: a tag
// added by hand, one deleted in the console.
func (gn *gen) writeDrift(w *writer) {
	w.raw("[")
	n := 0
	step := max(len(gn.l.insts)/97, 1)
	for i := 7 % max(len(gn.l.insts), 1); i < len(gn.l.insts) && n < 6; i += step {
		in := gn.build(i)
		if in.prior == nil || in.b.t.data || (n != 2 && in.prior["tags"] == nil) {
			continue
		}
		rc := gn.rc(in)
		ch := changeJSON{BeforeSensitive: in.priorSens, AfterUnknown: map[string]any{}}
		if n == 2 {
			ch.Actions = []string{"delete"}
			ch.Before, ch.After, ch.AfterSensitive = in.prior, nil, false
		} else {
			before := copyMap(in.prior)
			if tags, ok := before["tags"].(map[string]any); ok {
				t := copyMap(tags)
				t["ManualChange"] = "INC-" + fmt.Sprint(4000+i%1000)
				before["tags"] = t
			}
			ch.Actions = []string{"update"}
			ch.Before, ch.After, ch.AfterSensitive = in.prior, before, in.priorSens
		}
		rc.Change, rc.ActionReason = ch, ""
		if n > 0 {
			w.raw(",")
		}
		w.json(rc)
		n++
	}
	w.raw("]")
}

func variables(l *layout) map[string]any {
	v := func(x any) map[string]any { return map[string]any{"value": x} }
	return map[string]any{
		"environment":       v("prod"),
		"aws_region":        v("us-east-1"),
		"azure_location":    v("westeurope"),
		"gcp_project":       v("acme-billing-prod-4821"),
		"gcp_region":        v("europe-west1"),
		"kube_context":      v("gke_acme-billing-prod_europe-west1_main"),
		"default_tags":      v(defaultTags),
		"enable_monitoring": v(true),
		"instance_count":    v(3),
		"allowed_cidrs":     v([]any{"10.0.0.0/8", "172.16.0.0/12"}),
		"module_count":      v(len(l.calls)),
		"db_password":       v("not-a-real-password-" + fmt.Sprint(len(l.insts))),
	}
}

func outputs(l *layout, r *rand.Rand, planned bool) map[string]any {
	out := map[string]any{}
	for _, c := range l.calls {
		out[c.name+"_id"] = map[string]any{"sensitive": false, "type": "string", "value": fmt.Sprintf("%s-%x", c.name, r.Uint32())}
	}
	out["db_password"] = map[string]any{"sensitive": true, "type": "string", "value": "s3cr3t-" + fmt.Sprint(len(l.insts))}
	if planned {
		out["deployed_at"] = map[string]any{"sensitive": false}
	}
	return out
}

func outputChanges(l *layout, r *rand.Rand) map[string]any {
	out := map[string]any{}
	for _, c := range l.calls {
		v := fmt.Sprintf("%s-%x", c.name, r.Uint32())
		ch := map[string]any{"actions": []string{"no-op"}, "before": v, "after": v, "after_unknown": false, "before_sensitive": false, "after_sensitive": false}
		switch r.IntN(5) {
		case 0:
			ch["actions"] = []string{"update"}
			ch["after"] = nil
			ch["after_unknown"] = true
		case 1:
			ch["actions"] = []string{"create"}
			ch["before"] = nil
		}
		out[c.name+"_id"] = ch
	}
	out["db_password"] = map[string]any{"actions": []string{"no-op"}, "before": "s3cr3t", "after": "s3cr3t", "after_unknown": false, "before_sensitive": true, "after_sensitive": true}
	return out
}

func relevantAttributes(l *layout) []any {
	out := []any{}
	seen := map[string]bool{}
	for _, ref := range l.insts {
		t := ref.b.t.name
		var attr string
		switch {
		case strings.HasSuffix(t, "_iam_role"), strings.HasSuffix(t, "_kms_key"), t == "aws_sqs_queue":
			attr = "arn"
		case t == "aws_security_group", t == "azurerm_resource_group", t == "google_service_account":
			attr = "id"
		case t == "kubernetes_namespace":
			attr = "metadata"
		default:
			continue
		}
		a := blockAddr(ref.m, ref.b)
		if seen[a] {
			continue
		}
		seen[a] = true
		out = append(out, map[string]any{"resource": a, "attribute": []any{attr}})
		if attr == "metadata" {
			out[len(out)-1].(map[string]any)["attribute"] = []any{"metadata", 0, "name"}
		}
	}
	return out
}

func checks(l *layout) []any {
	out := []any{}
	for _, c := range l.calls {
		if c.kind != "app" || len(out) >= 8 {
			continue
		}
		addr := "module." + c.name + ".aws_s3_bucket.assets"
		out = append(out, map[string]any{
			"address": map[string]any{"kind": "resource", "mode": "managed", "module": "module." + c.name, "name": "assets", "to_display": addr, "type": "aws_s3_bucket"},
			"status":  "unknown",
			"instances": []any{map[string]any{
				"address": map[string]any{"index_key": "logs", "module": "module." + c.name, "to_display": addr + `["logs"]`},
				"status":  "unknown",
			}},
		})
	}
	out = append(out, map[string]any{
		"address":   map[string]any{"kind": "check", "name": "state_bucket_encrypted", "to_display": "check.state_bucket_encrypted"},
		"status":    "pass",
		"instances": []any{map[string]any{"address": map[string]any{"to_display": "check.state_bucket_encrypted"}, "status": "pass"}},
	})
	return out
}

// ---- configuration ----

func (gn *gen) writeConfig(w *writer) {
	w.raw(`{"provider_config":`)
	w.json(map[string]any{
		"aws": map[string]any{"name": "aws", "full_name": providerSource["aws"], "version_constraint": "~> 5.60",
			"expressions": map[string]any{"region": map[string]any{"references": []any{"var.aws_region"}},
				"default_tags": []any{map[string]any{"tags": map[string]any{"references": []any{"var.default_tags"}}}}}},
		"azurerm": map[string]any{"name": "azurerm", "full_name": providerSource["azurerm"], "version_constraint": "~> 3.110",
			"expressions": map[string]any{"features": []any{map[string]any{}}}},
		"google": map[string]any{"name": "google", "full_name": providerSource["google"], "version_constraint": ">= 5.30, < 6.0",
			"expressions": map[string]any{"project": map[string]any{"references": []any{"var.gcp_project"}}, "region": map[string]any{"references": []any{"var.gcp_region"}}}},
		"kubernetes": map[string]any{"name": "kubernetes", "full_name": providerSource["kubernetes"], "version_constraint": "~> 2.31",
			"expressions": map[string]any{"config_context": map[string]any{"references": []any{"var.kube_context"}}}},
	})
	w.raw(`,"root_module":{"outputs":`)
	outs := map[string]any{}
	for _, c := range gn.l.calls {
		outs[c.name+"_id"] = map[string]any{"expression": map[string]any{"references": []any{"module." + c.name + ".id", "module." + c.name}}}
	}
	outs["db_password"] = map[string]any{"sensitive": true, "expression": map[string]any{"references": []any{"var.db_password"}}}
	w.json(outs)
	w.raw(`,"resources":`)
	w.json(gn.configResources("", gn.l.root.blocks))
	w.raw(`,"module_calls":{`)
	for i, c := range gn.l.calls {
		if i > 0 {
			w.raw(",")
		}
		w.json(c.name)
		w.raw(":")
		gn.writeCall(w, c)
	}
	w.raw(`},"variables":`)
	vars := map[string]any{}
	for k := range variables(gn.l) {
		vars[k] = map[string]any{"description": "The " + strings.ReplaceAll(k, "_", " ") + "."}
	}
	w.json(vars)
	w.raw("}}")
}

func (gn *gen) writeCall(w *writer, c *call) {
	// The blocks of the first module instance of the call stand for the
	// call's configuration.
	var m *module
	for _, mm := range allModules(gn.l.root) {
		if mm.call == c {
			m = mm
			break
		}
	}
	var blocks []*block
	if m != nil {
		blocks = m.blocks
	}
	expr := map[string]any{
		"environment": map[string]any{"references": []any{"var.environment"}},
		"name":        map[string]any{"constant_value": c.name},
		"team":        map[string]any{"constant_value": teams[len(c.name)%len(teams)]},
	}
	mc := map[string]any{"source": c.source, "expressions": expr}
	if strings.HasPrefix(c.source, "app.terraform.io") {
		mc["version_constraint"] = "~> 4.2"
	}
	if c.keys != nil {
		mc["for_each_expression"] = map[string]any{"references": []any{"local.tenants"}}
	}
	w.raw(`{`)
	for _, k := range sortedKeys(mc) {
		w.json(k)
		w.raw(":")
		w.json(mc[k])
		w.raw(",")
	}
	w.raw(`"module":{"outputs":{"id":{"expression":{"references":["random_id.this.hex"]}}},"resources":`)
	w.json(gn.configResources("", blocks))
	if len(c.children) > 0 {
		w.raw(`,"module_calls":{`)
		for i, cc := range c.children {
			if i > 0 {
				w.raw(",")
			}
			w.json(cc.name)
			w.raw(":")
			gn.writeCall(w, cc)
		}
		w.raw("}")
	}
	w.raw(`,"variables":{"environment":{},"name":{},"team":{}}}}`)
}

func allModules(m *module) []*module {
	out := []*module{m}
	for _, c := range m.children {
		out = append(out, allModules(c)...)
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// configResources writes the configuration of resource blocks: each
// configured argument as a constant or as references.
func (gn *gen) configResources(prefix string, blocks []*block) []any {
	out := []any{}
	for _, b := range blocks {
		in := gn.build(b.first)
		vals := in.planned
		if vals == nil {
			vals = in.prior
		}
		// A configuration sets only some arguments: the rest are defaults.
		expr := map[string]any{}
		for i, a := range b.t.attrs {
			if a.f&fComputed != 0 || a.n == "id" || a.n == "tags_all" || len(expr) >= 6 {
				continue
			}
			v, ok := vals[a.n]
			if !ok || v == nil || (i%2 == 1 && a.n != "tags" && a.n != "name") {
				continue
			}
			switch {
			case a.n == "tags" || a.n == "labels":
				expr[a.n] = map[string]any{"references": []any{"local.tags"}}
			case i%3 != 0:
				expr[a.n] = map[string]any{"references": []any{"var." + a.n}}
			default:
				switch v.(type) {
				case []any:
					// Nested blocks are written as lists of expression objects.
					expr[a.n] = []any{map[string]any{}}
				default:
					expr[a.n] = map[string]any{"constant_value": v}
				}
			}
		}
		addr := b.t.name + "." + b.name
		if b.t.data {
			addr = "data." + addr
		}
		res := map[string]any{
			"address":             prefix + addr,
			"mode":                mode(b.t),
			"type":                b.t.name,
			"name":                b.name,
			"provider_config_key": b.t.provider,
			"expressions":         expr,
			"schema_version":      b.t.schema,
		}
		switch {
		case b.count > 0:
			res["count_expression"] = map[string]any{"constant_value": b.count}
		case b.each != nil:
			res["for_each_expression"] = map[string]any{"references": []any{"var." + b.name + "_keys"}}
		}
		out = append(out, res)
	}
	return out
}
