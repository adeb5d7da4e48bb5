package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

// This file holds the catalogue of resource types that plangen writes: for
// each type the attributes that its provider's schema has, with a generator
// of realistic values. The attribute sets are trimmed versions of the real
// provider schemas (AWS 5.x, AzureRM 3.x, Google 5.x, Kubernetes 2.x).

// Attribute flags.
const (
	fComputed  = 1 << iota // unknown until apply when the resource is created
	fSensitive             // marked sensitive in the provider schema
	fForceNew              // a change forces replacement
	fKeep                  // identity: never changed by an update
)

// gf generates one attribute value.
type gf func(g *G) any

// A is one attribute of a resource type.
type A struct {
	n string
	g gf
	f int
}

// rtype is one resource type.
type rtype struct {
	name     string
	provider string // aws, azurerm, google, kubernetes
	data     bool   // a data source
	schema   int    // schema_version
	attrs    []A
}

// G carries what a value generator needs: a random source and the instance
// that the value belongs to.
type G struct {
	r   *rand.Rand
	m   *module
	b   *block
	key any
}

func (g *G) intn(n int) int { return g.r.IntN(n) }

func (g *G) pick(s ...string) string { return s[g.r.IntN(len(s))] }

const hexdigits = "0123456789abcdef"
const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"

func (g *G) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = hexdigits[g.r.IntN(16)]
	}
	return string(b)
}

func (g *G) alnum(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[g.r.IntN(len(alnum))]
	}
	return string(b)
}

func (g *G) upper(n int) string { return strings.ToUpper(g.alnum(n)) }

func (g *G) uuid() string {
	return g.hex(8) + "-" + g.hex(4) + "-4" + g.hex(3) + "-a" + g.hex(3) + "-" + g.hex(12)
}

func (g *G) ip() string {
	return fmt.Sprintf("10.%d.%d.%d", g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254))
}

func (g *G) publicIP() string {
	return fmt.Sprintf("%d.%d.%d.%d", 3+g.r.IntN(50), g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254))
}

func (g *G) cidr() string {
	return fmt.Sprintf("10.%d.%d.0/%s", g.r.IntN(256), g.r.IntN(16)*16, g.pick("20", "22", "24"))
}

func (g *G) timestamp() string {
	return fmt.Sprintf("202%d-%02d-%02dT%02d:%02d:%02d.%03dZ", 3+g.r.IntN(3), 1+g.r.IntN(12), 1+g.r.IntN(28),
		g.r.IntN(24), g.r.IntN(60), g.r.IntN(60), g.r.IntN(1000))
}

// keyString is the instance key as it appears in names.
func (g *G) keyString() string {
	switch k := g.key.(type) {
	case int:
		return fmt.Sprint(k)
	case string:
		return strings.NewReplacer("/", "-", ".", "-", "_", "-").Replace(k)
	}
	return ""
}

// phys is the physical name of the instance, such as billing-app-3-web-2.
func (g *G) phys() string {
	n := g.m.prefix + "-" + strings.ReplaceAll(g.b.name, "_", "-")
	if k := g.keyString(); k != "" {
		n += "-" + k
	}
	return n
}

func (g *G) arn(service, resource string) string {
	return "arn:aws:" + service + ":" + g.m.region + ":" + g.m.account + ":" + resource
}

func (g *G) azureID(provider, kind string) string {
	return "/subscriptions/" + g.m.subscription + "/resourceGroups/" + g.m.rg + "/providers/" +
		provider + "/" + kind + "/" + g.phys()
}

// Value generator constructors.

func cs(v string) gf { return func(*G) any { return v } }

func cv(v any) gf { return func(*G) any { return v } }

func nul() gf { return func(*G) any { return nil } }

func oneOf(vs ...string) gf { return func(g *G) any { return g.pick(vs...) } }

func oneInt(vs ...int) gf { return func(g *G) any { return vs[g.r.IntN(len(vs))] } }

func num(lo, hi int) gf { return func(g *G) any { return lo + g.r.IntN(hi-lo+1) } }

func boolp(p float64) gf { return func(g *G) any { return g.r.Float64() < p } }

func strs(lo, hi int, e func(g *G) string) gf {
	return func(g *G) any {
		n := lo + g.r.IntN(hi-lo+1)
		out := make([]any, n)
		for i := range out {
			out[i] = e(g)
		}
		return out
	}
}

func emptyList() gf { return func(*G) any { return []any{} } }

func emptyMap() gf { return func(*G) any { return map[string]any{} } }

// blk is a nested block: a list of lo..hi objects.
func blk(lo, hi int, attrs ...A) gf {
	return func(g *G) any {
		n := lo + g.r.IntN(hi-lo+1)
		out := make([]any, n)
		for i := range out {
			out[i] = object(g, attrs)
		}
		return out
	}
}

func object(g *G, attrs []A) map[string]any {
	m := make(map[string]any, len(attrs))
	for _, a := range attrs {
		m[a.n] = a.g(g)
	}
	return m
}

func fn(f func(g *G) string) gf { return func(g *G) any { return f(g) } }

// Common attribute sets.

func (g *G) awsTags() map[string]any {
	t := map[string]any{
		"Environment": g.m.env,
		"Team":        g.m.team,
		"CostCenter":  g.m.costCenter,
	}
	if g.r.IntN(3) == 0 {
		t["Service"] = g.m.service
	}
	if g.r.IntN(8) == 0 {
		t["DataClassification"] = g.pick("internal", "confidential", "public")
	}
	return t
}

func awsTags() A { return A{"tags", func(g *G) any { return g.awsTags() }, 0} }

// tags_all is filled in after tags: see finishValues.
func awsTagsAll() A { return A{"tags_all", nul(), 0} }

func (g *G) gcpLabels() map[string]any {
	return map[string]any{
		"environment": strings.ToLower(g.m.env),
		"team":        g.m.team,
		"cost-center": strings.ToLower(g.m.costCenter),
		"service":     g.m.service,
	}
}

func k8sMetadata(extra ...A) A {
	attrs := append([]A{
		{"annotations", emptyMap(), 0},
		{"generate_name", cs(""), 0},
		{"generation", num(1, 40), 0},
		{"labels", func(g *G) any {
			return map[string]any{
				"app":         g.m.service,
				"environment": strings.ToLower(g.m.env),
				"team":        g.m.team,
			}
		}, 0},
		{"name", fn(func(g *G) string { return g.phys() }), 0},
		{"namespace", fn(func(g *G) string { return g.m.namespace }), 0},
		{"resource_version", fn(func(g *G) string { return fmt.Sprint(100000 + g.r.IntN(9000000)) }), 0},
		{"uid", fn(func(g *G) string { return g.uuid() }), 0},
	}, extra...)
	return A{"metadata", blk(1, 1, attrs...), 0}
}

func policyDocument(g *G) string {
	type stmt struct {
		Sid      string   `json:"Sid,omitempty"`
		Effect   string   `json:"Effect"`
		Action   []string `json:"Action"`
		Resource []string `json:"Resource"`
	}
	doc := struct {
		Version   string `json:"Version"`
		Statement []stmt `json:"Statement"`
	}{Version: "2012-10-17"}
	actions := [][]string{
		{"s3:GetObject", "s3:PutObject", "s3:ListBucket"},
		{"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
		{"kms:Decrypt", "kms:GenerateDataKey"},
		{"logs:CreateLogStream", "logs:PutLogEvents"},
		{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"},
		{"secretsmanager:GetSecretValue"},
	}
	for i, n := 0, 1+g.r.IntN(2); i < n; i++ {
		a := actions[g.r.IntN(len(actions))]
		svc := strings.SplitN(a[0], ":", 2)[0]
		doc.Statement = append(doc.Statement, stmt{
			Sid:      fmt.Sprintf("Allow%s%d", strings.ToUpper(svc[:1])+svc[1:], i),
			Effect:   "Allow",
			Action:   a,
			Resource: []string{g.arn(svc, g.m.prefix+"-"+g.alnum(6)+"/*")},
		})
	}
	b, _ := json.Marshal(doc)
	return string(b)
}

func assumeRolePolicy(g *G) string {
	svc := g.pick("ec2.amazonaws.com", "lambda.amazonaws.com", "ecs-tasks.amazonaws.com")
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"` + svc +
		`"},"Action":"sts:AssumeRole"}]}`
}

var types = map[string]*rtype{}

func def(t *rtype) {
	if _, dup := types[t.name]; dup {
		panic("duplicate type " + t.name)
	}
	types[t.name] = t
}

func init() {
	id := func(f func(g *G) string) A { return A{"id", fn(f), fComputed | fKeep} }
	arn := func(service, prefix string) A {
		return A{"arn", fn(func(g *G) string { return g.arn(service, prefix+g.phys()) }), fComputed | fKeep}
	}
	name := A{"name", fn(func(g *G) string { return g.phys() }), fForceNew | fKeep}
	timeouts := A{"timeouts", nul(), 0}

	// ---- AWS ----
	def(&rtype{name: "aws_instance", provider: "aws", schema: 1, attrs: []A{
		{"ami", fn(func(g *G) string { return "ami-0" + g.hex(16) }), fForceNew},
		arn("ec2", "instance/"),
		{"associate_public_ip_address", boolp(0.2), fForceNew},
		{"availability_zone", fn(func(g *G) string { return g.m.region + g.pick("a", "b", "c") }), fForceNew},
		{"cpu_core_count", num(1, 8), 0},
		{"cpu_threads_per_core", cv(2), 0},
		{"disable_api_termination", boolp(0.3), 0},
		{"ebs_optimized", boolp(0.7), 0},
		{"iam_instance_profile", fn(func(g *G) string { return g.m.prefix + "-profile" }), 0},
		id(func(g *G) string { return "i-0" + g.hex(16) }),
		{"instance_state", cs("running"), fComputed},
		{"instance_type", oneOf("t3.micro", "t3.medium", "m6i.large", "m6i.xlarge", "c6i.2xlarge", "r6i.large"), 0},
		{"key_name", fn(func(g *G) string { return g.m.team + "-deploy" }), 0},
		{"metadata_options", blk(1, 1,
			A{"http_endpoint", cs("enabled"), 0},
			A{"http_put_response_hop_limit", num(1, 2), 0},
			A{"http_tokens", oneOf("required", "optional"), 0},
			A{"instance_metadata_tags", cs("disabled"), 0}), 0},
		{"monitoring", boolp(0.5), 0},
		{"private_ip", fn(func(g *G) string { return g.ip() }), fComputed},
		{"public_ip", cs(""), fComputed},
		{"root_block_device", blk(1, 1,
			A{"delete_on_termination", cv(true), 0},
			A{"device_name", cs("/dev/xvda"), 0},
			A{"encrypted", cv(true), 0},
			A{"iops", cv(3000), 0},
			A{"throughput", cv(125), 0},
			A{"volume_id", fn(func(g *G) string { return "vol-0" + g.hex(16) }), 0},
			A{"volume_size", num(8, 200), 0},
			A{"volume_type", cs("gp3"), 0}), 0},
		{"subnet_id", fn(func(g *G) string { return "subnet-0" + g.hex(16) }), fForceNew},
		awsTags(), awsTagsAll(),
		{"tenancy", cs("default"), 0},
		{"user_data", fn(func(g *G) string { return g.hex(40) }), fForceNew},
		{"vpc_security_group_ids", strs(1, 3, func(g *G) string { return "sg-0" + g.hex(16) }), 0},
	}})
	def(&rtype{name: "aws_s3_bucket", provider: "aws", attrs: []A{
		{"acceleration_status", cs(""), fComputed},
		arn("s3", ""),
		{"bucket", fn(func(g *G) string { return g.phys() + "-" + g.m.account }), fForceNew | fKeep},
		{"bucket_domain_name", fn(func(g *G) string { return g.phys() + ".s3.amazonaws.com" }), fComputed},
		{"bucket_regional_domain_name", fn(func(g *G) string { return g.phys() + ".s3." + g.m.region + ".amazonaws.com" }), fComputed},
		{"force_destroy", boolp(0.1), 0},
		{"hosted_zone_id", cs("Z3AQBSTGFYJSTF"), fComputed},
		id(func(g *G) string { return g.phys() + "-" + g.m.account }),
		{"object_lock_enabled", cv(false), fForceNew},
		{"region", fn(func(g *G) string { return g.m.region }), fComputed},
		{"request_payer", cs("BucketOwner"), fComputed},
		{"server_side_encryption_configuration", blk(1, 1,
			A{"rule", blk(1, 1,
				A{"apply_server_side_encryption_by_default", blk(1, 1,
					A{"kms_master_key_id", cs(""), 0},
					A{"sse_algorithm", oneOf("AES256", "aws:kms"), 0}), 0},
				A{"bucket_key_enabled", cv(false), 0}), 0}), fComputed},
		awsTags(), awsTagsAll(),
		{"versioning", blk(1, 1, A{"enabled", boolp(0.6), 0}, A{"mfa_delete", cv(false), 0}), fComputed},
	}})
	def(&rtype{name: "aws_s3_bucket_public_access_block", provider: "aws", attrs: []A{
		{"block_public_acls", cv(true), 0},
		{"block_public_policy", cv(true), 0},
		{"bucket", fn(func(g *G) string { return g.phys() }), fForceNew},
		id(func(g *G) string { return g.phys() }),
		{"ignore_public_acls", cv(true), 0},
		{"restrict_public_buckets", boolp(0.9), 0},
	}})
	def(&rtype{name: "aws_iam_role", provider: "aws", attrs: []A{
		arn("iam", "role/"),
		{"assume_role_policy", fn(assumeRolePolicy), 0},
		{"create_date", fn(func(g *G) string { return g.timestamp() }), fComputed},
		{"description", fn(func(g *G) string { return "Role for " + g.m.service + " (" + g.m.env + ")" }), 0},
		{"force_detach_policies", cv(false), 0},
		id(func(g *G) string { return g.phys() }),
		{"inline_policy", emptyList(), fComputed},
		{"managed_policy_arns", strs(0, 3, func(g *G) string {
			return "arn:aws:iam::aws:policy/" + g.pick("ReadOnlyAccess", "CloudWatchAgentServerPolicy", "AmazonSSMManagedInstanceCore")
		}), fComputed},
		{"max_session_duration", oneInt(3600, 7200), 0},
		name,
		{"name_prefix", cs(""), fComputed},
		{"path", cs("/"), fForceNew},
		{"permissions_boundary", cs(""), 0},
		awsTags(), awsTagsAll(),
		{"unique_id", fn(func(g *G) string { return "AROA" + g.upper(17) }), fComputed | fKeep},
	}})
	def(&rtype{name: "aws_iam_policy", provider: "aws", attrs: []A{
		arn("iam", "policy/"),
		{"attachment_count", num(0, 3), fComputed},
		{"description", fn(func(g *G) string { return "Access policy for " + g.m.service }), fForceNew},
		id(func(g *G) string { return g.arn("iam", "policy/"+g.phys()) }),
		name,
		{"name_prefix", cs(""), fComputed},
		{"path", cs("/"), fForceNew},
		{"policy", fn(policyDocument), 0},
		{"policy_id", fn(func(g *G) string { return "ANPA" + g.upper(17) }), fComputed | fKeep},
		awsTags(), awsTagsAll(),
	}})
	def(&rtype{name: "aws_iam_role_policy_attachment", provider: "aws", attrs: []A{
		id(func(g *G) string { return g.phys() + "-" + g.hex(26) }),
		{"policy_arn", fn(func(g *G) string { return g.arn("iam", "policy/"+g.phys()) }), fForceNew},
		{"role", fn(func(g *G) string { return g.m.prefix + "-app" }), fForceNew},
	}})
	rule := []A{
		{"cidr_blocks", strs(1, 2, func(g *G) string { return g.cidr() }), 0},
		{"description", oneOf("https", "http", "ssh from bastion", "metrics", "all egress"), 0},
		{"from_port", oneInt(443, 80, 22, 9090, 0), 0},
		{"ipv6_cidr_blocks", emptyList(), 0},
		{"prefix_list_ids", emptyList(), 0},
		{"protocol", oneOf("tcp", "-1"), 0},
		{"security_groups", emptyList(), 0},
		{"self", cv(false), 0},
		{"to_port", oneInt(443, 80, 22, 9090, 0), 0},
	}
	def(&rtype{name: "aws_security_group", provider: "aws", schema: 1, attrs: []A{
		arn("ec2", "security-group/sg-"),
		{"description", cs("Managed by Terraform"), fForceNew},
		{"egress", blk(1, 1, rule...), 0},
		id(func(g *G) string { return "sg-0" + g.hex(16) }),
		{"ingress", blk(1, 2, rule...), 0},
		name,
		{"name_prefix", cs(""), fComputed},
		{"owner_id", fn(func(g *G) string { return g.m.account }), fComputed},
		{"revoke_rules_on_delete", cv(false), 0},
		awsTags(), awsTagsAll(), timeouts,
		{"vpc_id", fn(func(g *G) string { return "vpc-0" + g.hex(16) }), fForceNew},
	}})
	def(&rtype{name: "aws_security_group_rule", provider: "aws", schema: 2, attrs: []A{
		{"cidr_blocks", strs(1, 3, func(g *G) string { return g.cidr() }), fForceNew},
		{"description", oneOf("https from lb", "http from lb", "ssh from bastion", "prometheus scrape"), 0},
		{"from_port", oneInt(443, 80, 22, 9090), fForceNew},
		id(func(g *G) string { return "sgrule-" + fmt.Sprint(1000000000+g.r.IntN(3000000000)) }),
		{"ipv6_cidr_blocks", nul(), fForceNew},
		{"prefix_list_ids", nul(), fForceNew},
		{"protocol", cs("tcp"), fForceNew},
		{"security_group_id", fn(func(g *G) string { return "sg-0" + g.hex(16) }), fForceNew},
		{"security_group_rule_id", fn(func(g *G) string { return "sgr-0" + g.hex(16) }), fComputed},
		{"self", cv(false), fForceNew},
		{"source_security_group_id", nul(), fComputed},
		{"to_port", oneInt(443, 80, 22, 9090), fForceNew},
		{"type", oneOf("ingress", "egress"), fForceNew},
	}})
	def(&rtype{name: "aws_db_instance", provider: "aws", schema: 2, attrs: []A{
		{"address", fn(func(g *G) string { return g.phys() + "." + g.alnum(12) + "." + g.m.region + ".rds.amazonaws.com" }), fComputed},
		{"allocated_storage", num(20, 500), 0},
		{"allow_major_version_upgrade", nul(), 0},
		arn("rds", "db:"),
		{"auto_minor_version_upgrade", cv(true), 0},
		{"availability_zone", fn(func(g *G) string { return g.m.region + "a" }), fComputed},
		{"backup_retention_period", num(1, 35), 0},
		{"backup_window", cs("03:00-04:00"), 0},
		{"db_name", fn(func(g *G) string { return strings.ReplaceAll(g.m.service, "-", "_") }), fForceNew},
		{"db_subnet_group_name", fn(func(g *G) string { return g.m.prefix + "-db" }), 0},
		{"deletion_protection", boolp(0.5), 0},
		{"endpoint", fn(func(g *G) string { return g.phys() + "." + g.alnum(12) + ".rds.amazonaws.com:5432" }), fComputed},
		{"engine", oneOf("postgres", "mysql"), fForceNew},
		{"engine_version", oneOf("15.6", "16.3", "8.0.36"), 0},
		id(func(g *G) string { return "db-" + g.upper(26) }),
		{"identifier", fn(func(g *G) string { return g.phys() }), fForceNew | fKeep},
		{"instance_class", oneOf("db.t4g.medium", "db.r6g.large", "db.r6g.xlarge"), 0},
		{"kms_key_id", fn(func(g *G) string { return g.arn("kms", "key/"+g.uuid()) }), fForceNew},
		{"maintenance_window", cs("sun:05:00-sun:06:00"), 0},
		{"multi_az", boolp(0.5), 0},
		{"parameter_group_name", cs("default.postgres16"), 0},
		{"password", fn(func(g *G) string { return g.alnum(24) }), fSensitive},
		{"port", cv(5432), 0},
		{"publicly_accessible", cv(false), 0},
		{"skip_final_snapshot", boolp(0.3), 0},
		{"storage_encrypted", cv(true), fForceNew},
		{"storage_type", cs("gp3"), 0},
		awsTags(), awsTagsAll(), timeouts,
		{"username", cs("app_admin"), fForceNew},
		{"vpc_security_group_ids", strs(1, 2, func(g *G) string { return "sg-0" + g.hex(16) }), 0},
	}})
	def(&rtype{name: "aws_lambda_function", provider: "aws", attrs: []A{
		{"architectures", strs(1, 1, func(g *G) string { return g.pick("x86_64", "arm64") }), 0},
		arn("lambda", "function:"),
		{"description", fn(func(g *G) string { return g.m.service + " worker" }), 0},
		{"environment", blk(1, 1, A{"variables", func(g *G) any {
			return map[string]any{"LOG_LEVEL": g.pick("info", "debug"), "STAGE": g.m.env}
		}, 0}), 0},
		{"ephemeral_storage", blk(1, 1, A{"size", cv(512), 0}), 0},
		{"filename", fn(func(g *G) string { return "build/" + g.m.service + ".zip" }), 0},
		{"function_name", fn(func(g *G) string { return g.phys() }), fForceNew | fKeep},
		{"handler", oneOf("main.handler", "index.handler", "bootstrap"), 0},
		id(func(g *G) string { return g.phys() }),
		{"invoke_arn", fn(func(g *G) string {
			return g.arn("apigateway", "lambda:path/2015-03-31/functions/"+g.phys()+"/invocations")
		}), fComputed},
		{"last_modified", fn(func(g *G) string { return g.timestamp() }), fComputed},
		{"memory_size", oneInt(128, 256, 512, 1024), 0},
		{"publish", cv(false), 0},
		{"role", fn(func(g *G) string { return g.arn("iam", "role/"+g.m.prefix+"-app") }), 0},
		{"runtime", oneOf("python3.12", "nodejs20.x", "provided.al2023"), 0},
		{"source_code_hash", fn(func(g *G) string { return g.alnum(43) + "=" }), 0},
		{"source_code_size", num(1000, 9000000), fComputed},
		awsTags(), awsTagsAll(),
		{"timeout", num(3, 900), 0},
		{"tracing_config", blk(1, 1, A{"mode", oneOf("PassThrough", "Active"), 0}), 0},
		{"version", cs("$LATEST"), fComputed},
	}})
	def(&rtype{name: "aws_cloudwatch_log_group", provider: "aws", attrs: []A{
		arn("logs", "log-group:/app/"),
		id(func(g *G) string { return "/app/" + g.phys() }),
		{"kms_key_id", cs(""), 0},
		{"log_group_class", cs("STANDARD"), 0},
		{"name", fn(func(g *G) string { return "/app/" + g.phys() }), fForceNew | fKeep},
		{"retention_in_days", oneInt(7, 30, 90, 365), 0},
		{"skip_destroy", cv(false), 0},
		awsTags(), awsTagsAll(),
	}})
	def(&rtype{name: "aws_kms_key", provider: "aws", attrs: []A{
		arn("kms", "key/"),
		{"bypass_policy_lockout_safety_check", cv(false), 0},
		{"customer_master_key_spec", cs("SYMMETRIC_DEFAULT"), fForceNew},
		{"deletion_window_in_days", cv(30), 0},
		{"description", fn(func(g *G) string { return "Key for " + g.m.service }), 0},
		{"enable_key_rotation", cv(true), 0},
		id(func(g *G) string { return g.uuid() }),
		{"is_enabled", cv(true), 0},
		{"key_id", fn(func(g *G) string { return g.uuid() }), fComputed | fKeep},
		{"key_usage", cs("ENCRYPT_DECRYPT"), fForceNew},
		{"multi_region", cv(false), fForceNew},
		{"policy", fn(policyDocument), 0},
		awsTags(), awsTagsAll(),
	}})
	def(&rtype{name: "aws_sqs_queue", provider: "aws", attrs: []A{
		arn("sqs", ""),
		{"content_based_deduplication", cv(false), 0},
		{"delay_seconds", cv(0), 0},
		{"fifo_queue", cv(false), fForceNew},
		id(func(g *G) string {
			return "https://sqs." + g.m.region + ".amazonaws.com/" + g.m.account + "/" + g.phys()
		}),
		{"kms_master_key_id", cs("alias/aws/sqs"), 0},
		{"max_message_size", cv(262144), 0},
		{"message_retention_seconds", oneInt(345600, 1209600), 0},
		name,
		{"receive_wait_time_seconds", num(0, 20), 0},
		{"redrive_policy", fn(func(g *G) string {
			return `{"deadLetterTargetArn":"` + g.arn("sqs", g.phys()+"-dlq") + `","maxReceiveCount":5}`
		}), 0},
		{"sqs_managed_sse_enabled", cv(true), 0},
		awsTags(), awsTagsAll(),
		{"url", fn(func(g *G) string {
			return "https://sqs." + g.m.region + ".amazonaws.com/" + g.m.account + "/" + g.phys()
		}), fComputed},
		{"visibility_timeout_seconds", num(30, 900), 0},
	}})
	def(&rtype{name: "aws_secretsmanager_secret", provider: "aws", attrs: []A{
		arn("secretsmanager", "secret:"),
		{"description", fn(func(g *G) string { return "Credentials for " + g.m.service }), 0},
		{"force_overwrite_replica_secret", cv(false), 0},
		id(func(g *G) string { return g.arn("secretsmanager", "secret:"+g.phys()+"-"+g.alnum(6)) }),
		{"kms_key_id", fn(func(g *G) string { return g.arn("kms", "key/"+g.uuid()) }), 0},
		name,
		{"recovery_window_in_days", cv(30), 0},
		{"replica", emptyList(), 0},
		awsTags(), awsTagsAll(),
	}})
	def(&rtype{name: "aws_ebs_volume", provider: "aws", schema: 1, attrs: []A{
		arn("ec2", "volume/vol-"),
		{"availability_zone", fn(func(g *G) string { return g.m.region + g.pick("a", "b", "c") }), fForceNew},
		{"encrypted", cv(true), fForceNew},
		{"final_snapshot", cv(false), 0},
		id(func(g *G) string { return "vol-0" + g.hex(16) }),
		{"iops", cv(3000), 0},
		{"kms_key_id", fn(func(g *G) string { return g.arn("kms", "key/"+g.uuid()) }), fForceNew},
		{"multi_attach_enabled", cv(false), 0},
		{"size", num(20, 2000), 0},
		{"snapshot_id", cs(""), fForceNew},
		awsTags(), awsTagsAll(),
		{"throughput", cv(125), 0},
		{"type", cs("gp3"), 0},
	}})
	def(&rtype{name: "aws_route53_record", provider: "aws", schema: 2, attrs: []A{
		{"alias", emptyList(), 0},
		{"allow_overwrite", nul(), 0},
		{"fqdn", fn(func(g *G) string { return g.phys() + ".internal.example.com" }), fComputed},
		id(func(g *G) string { return "Z" + g.upper(20) + "_" + g.phys() + ".internal.example.com_A" }),
		{"name", fn(func(g *G) string { return g.phys() + ".internal.example.com" }), fForceNew | fKeep},
		{"records", strs(1, 3, func(g *G) string { return g.ip() }), 0},
		{"ttl", oneInt(60, 300, 3600), 0},
		{"type", cs("A"), fForceNew},
		{"zone_id", fn(func(g *G) string { return "Z" + g.upper(20) }), fForceNew},
	}})
	def(&rtype{name: "aws_dynamodb_table", provider: "aws", schema: 1, attrs: []A{
		arn("dynamodb", "table/"),
		{"attribute", blk(1, 3, A{"name", oneOf("pk", "sk", "gsi1pk", "tenant_id"), 0}, A{"type", oneOf("S", "N"), 0}), 0},
		{"billing_mode", oneOf("PAY_PER_REQUEST", "PROVISIONED"), 0},
		{"deletion_protection_enabled", boolp(0.5), 0},
		{"hash_key", cs("pk"), fForceNew},
		id(func(g *G) string { return g.phys() }),
		name,
		{"point_in_time_recovery", blk(1, 1, A{"enabled", boolp(0.7), 0}), 0},
		{"range_key", cs("sk"), fForceNew},
		{"read_capacity", cv(0), 0},
		{"server_side_encryption", emptyList(), 0},
		{"stream_arn", cs(""), fComputed},
		{"stream_enabled", cv(false), 0},
		{"table_class", cs("STANDARD"), 0},
		awsTags(), awsTagsAll(), timeouts,
		{"ttl", blk(1, 1, A{"attribute_name", cs("expires_at"), 0}, A{"enabled", cv(true), 0}), 0},
		{"write_capacity", cv(0), 0},
	}})
	def(&rtype{name: "aws_cloudwatch_metric_alarm", provider: "aws", schema: 1, attrs: []A{
		{"actions_enabled", cv(true), 0},
		{"alarm_actions", strs(1, 1, func(g *G) string { return g.arn("sns", g.m.team+"-alerts") }), 0},
		{"alarm_description", fn(func(g *G) string { return g.m.service + " is unhealthy" }), 0},
		{"alarm_name", fn(func(g *G) string { return g.phys() }), fForceNew | fKeep},
		arn("cloudwatch", "alarm:"),
		{"comparison_operator", oneOf("GreaterThanThreshold", "LessThanThreshold"), 0},
		{"dimensions", func(g *G) any { return map[string]any{"FunctionName": g.m.prefix + "-worker"} }, 0},
		{"evaluation_periods", num(1, 5), 0},
		id(func(g *G) string { return g.phys() }),
		{"metric_name", oneOf("Errors", "Throttles", "CPUUtilization", "ApproximateAgeOfOldestMessage"), 0},
		{"namespace", oneOf("AWS/Lambda", "AWS/EC2", "AWS/SQS"), 0},
		{"period", oneInt(60, 300), 0},
		{"statistic", oneOf("Sum", "Average", "Maximum"), 0},
		awsTags(), awsTagsAll(),
		{"threshold", num(1, 90), 0},
		{"treat_missing_data", cs("missing"), 0},
	}})
	def(&rtype{name: "aws_iam_policy_document", provider: "aws", data: true, attrs: []A{
		id(func(g *G) string { return fmt.Sprint(1000000000 + g.r.IntN(3000000000)) }),
		{"json", fn(policyDocument), fComputed},
		{"minified_json", fn(policyDocument), fComputed},
		{"statement", blk(1, 2,
			A{"actions", strs(1, 3, func(g *G) string {
				return g.pick("s3:GetObject", "sqs:SendMessage", "kms:Decrypt", "logs:PutLogEvents")
			}), 0},
			A{"effect", cs("Allow"), 0},
			A{"resources", strs(1, 2, func(g *G) string { return g.arn("s3", g.phys()+"/*") }), 0},
			A{"sid", cs(""), 0}), 0},
		{"version", cs("2012-10-17"), 0},
	}})

	// ---- Azure ----
	azTags := A{"tags", func(g *G) any {
		return map[string]any{"environment": g.m.env, "team": g.m.team, "cost-center": g.m.costCenter, "service": g.m.service}
	}, 0}
	location := A{"location", fn(func(g *G) string { return g.m.location }), fForceNew}
	rg := A{"resource_group_name", fn(func(g *G) string { return g.m.rg }), fForceNew}
	def(&rtype{name: "azurerm_resource_group", provider: "azurerm", attrs: []A{
		id(func(g *G) string {
			return "/subscriptions/" + g.m.subscription + "/resourceGroups/" + g.m.rg
		}),
		location,
		{"managed_by", cs(""), 0},
		{"name", fn(func(g *G) string { return g.m.rg }), fForceNew | fKeep},
		azTags, timeouts,
	}})
	def(&rtype{name: "azurerm_storage_account", provider: "azurerm", schema: 4, attrs: []A{
		{"access_tier", oneOf("Hot", "Cool"), 0},
		{"account_kind", cs("StorageV2"), 0},
		{"account_replication_type", oneOf("LRS", "ZRS", "GRS"), 0},
		{"account_tier", cs("Standard"), fForceNew},
		{"allow_nested_items_to_be_public", cv(false), 0},
		{"blob_properties", blk(1, 1,
			A{"change_feed_enabled", cv(false), 0},
			A{"delete_retention_policy", blk(1, 1, A{"days", num(7, 30), 0}), 0},
			A{"versioning_enabled", boolp(0.5), 0}), 0},
		{"enable_https_traffic_only", cv(true), 0},
		id(func(g *G) string { return g.azureID("Microsoft.Storage", "storageAccounts") }),
		{"infrastructure_encryption_enabled", cv(false), fForceNew},
		location,
		{"min_tls_version", cs("TLS1_2"), 0},
		{"name", fn(func(g *G) string { return "st" + g.alnum(16) }), fForceNew | fKeep},
		{"network_rules", blk(1, 1,
			A{"bypass", strs(1, 1, func(*G) string { return "AzureServices" }), 0},
			A{"default_action", oneOf("Deny", "Allow"), 0},
			A{"ip_rules", emptyList(), 0}), 0},
		{"primary_access_key", fn(func(g *G) string { return g.alnum(86) + "==" }), fComputed | fSensitive},
		{"primary_blob_endpoint", fn(func(g *G) string { return "https://st" + g.alnum(16) + ".blob.core.windows.net/" }), fComputed},
		{"primary_connection_string", fn(func(g *G) string {
			return "DefaultEndpointsProtocol=https;AccountName=st" + g.alnum(16) + ";AccountKey=" + g.alnum(86) + "==;EndpointSuffix=core.windows.net"
		}), fComputed | fSensitive},
		{"public_network_access_enabled", boolp(0.3), 0},
		rg,
		{"shared_access_key_enabled", cv(true), 0},
		azTags, timeouts,
	}})
	def(&rtype{name: "azurerm_storage_container", provider: "azurerm", schema: 1, attrs: []A{
		{"container_access_type", cs("private"), 0},
		{"has_immutability_policy", cv(false), fComputed},
		{"has_legal_hold", cv(false), fComputed},
		id(func(g *G) string { return "https://st" + g.alnum(16) + ".blob.core.windows.net/" + g.phys() }),
		{"metadata", emptyMap(), 0},
		name,
		{"resource_manager_id", fn(func(g *G) string {
			return g.azureID("Microsoft.Storage", "storageAccounts") + "/blobServices/default/containers/" + g.phys()
		}), fComputed},
		{"storage_account_name", fn(func(g *G) string { return "st" + g.alnum(16) }), fForceNew},
		timeouts,
	}})
	def(&rtype{name: "azurerm_role_assignment", provider: "azurerm", attrs: []A{
		{"condition", cs(""), fForceNew},
		{"condition_version", cs(""), fForceNew},
		{"delegated_managed_identity_resource_id", cs(""), fForceNew},
		{"description", cs(""), fForceNew},
		id(func(g *G) string {
			return "/subscriptions/" + g.m.subscription + "/providers/Microsoft.Authorization/roleAssignments/" + g.uuid()
		}),
		{"name", fn(func(g *G) string { return g.uuid() }), fComputed | fForceNew | fKeep},
		{"principal_id", fn(func(g *G) string { return g.uuid() }), fForceNew},
		{"principal_type", oneOf("ServicePrincipal", "Group", "User"), fComputed},
		{"role_definition_id", fn(func(g *G) string {
			return "/subscriptions/" + g.m.subscription + "/providers/Microsoft.Authorization/roleDefinitions/" + g.uuid()
		}), fComputed},
		{"role_definition_name", oneOf("Reader", "Contributor", "Storage Blob Data Reader", "Key Vault Secrets User", "Owner"), fForceNew},
		{"scope", fn(func(g *G) string {
			return "/subscriptions/" + g.m.subscription + "/resourceGroups/" + g.m.rg
		}), fForceNew},
		{"skip_service_principal_aad_check", cv(false), 0},
		timeouts,
	}})
	def(&rtype{name: "azurerm_network_security_group", provider: "azurerm", attrs: []A{
		id(func(g *G) string { return g.azureID("Microsoft.Network", "networkSecurityGroups") }),
		location, name, rg,
		{"security_rule", emptyList(), 0},
		azTags, timeouts,
	}})
	def(&rtype{name: "azurerm_network_security_rule", provider: "azurerm", attrs: []A{
		{"access", oneOf("Allow", "Deny"), 0},
		{"description", cs(""), 0},
		{"destination_address_prefix", oneOf("*", "VirtualNetwork"), 0},
		{"destination_address_prefixes", nul(), 0},
		{"destination_port_range", oneOf("443", "80", "22", "3389", "5432"), 0},
		{"destination_port_ranges", nul(), 0},
		{"direction", oneOf("Inbound", "Outbound"), 0},
		id(func(g *G) string {
			return g.azureID("Microsoft.Network", "networkSecurityGroups") + "/securityRules/" + g.phys()
		}),
		name,
		{"network_security_group_name", fn(func(g *G) string { return g.m.prefix + "-nsg" }), fForceNew},
		{"priority", num(100, 4000), 0},
		{"protocol", oneOf("Tcp", "*"), 0},
		rg,
		{"source_address_prefix", fn(func(g *G) string { return g.cidr() }), 0},
		{"source_port_range", cs("*"), 0},
		timeouts,
	}})
	def(&rtype{name: "azurerm_linux_virtual_machine", provider: "azurerm", attrs: []A{
		{"admin_ssh_key", blk(1, 1, A{"public_key", fn(func(g *G) string { return "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + g.alnum(43) }), 0}, A{"username", cs("azureuser"), 0}), fForceNew},
		{"admin_username", cs("azureuser"), fForceNew},
		{"allow_extension_operations", cv(true), 0},
		{"computer_name", fn(func(g *G) string { return g.phys() }), fComputed | fForceNew},
		{"disable_password_authentication", cv(true), fForceNew},
		id(func(g *G) string { return g.azureID("Microsoft.Compute", "virtualMachines") }),
		location, name,
		{"network_interface_ids", strs(1, 1, func(g *G) string { return g.azureID("Microsoft.Network", "networkInterfaces") }), 0},
		{"os_disk", blk(1, 1,
			A{"caching", cs("ReadWrite"), 0},
			A{"disk_size_gb", num(30, 256), 0},
			A{"name", fn(func(g *G) string { return g.phys() + "-osdisk" }), 0},
			A{"storage_account_type", oneOf("Premium_LRS", "StandardSSD_LRS"), 0},
			A{"write_accelerator_enabled", cv(false), 0}), 0},
		{"private_ip_address", fn(func(g *G) string { return g.ip() }), fComputed},
		{"provision_vm_agent", cv(true), fForceNew},
		rg,
		{"size", oneOf("Standard_D2s_v5", "Standard_D4s_v5", "Standard_B2ms"), 0},
		{"source_image_reference", blk(1, 1,
			A{"offer", cs("0001-com-ubuntu-server-jammy"), 0},
			A{"publisher", cs("Canonical"), 0},
			A{"sku", cs("22_04-lts-gen2"), 0},
			A{"version", cs("latest"), 0}), fForceNew},
		azTags, timeouts,
		{"virtual_machine_id", fn(func(g *G) string { return g.uuid() }), fComputed | fKeep},
		{"zone", oneOf("1", "2", "3"), fForceNew},
	}})
	def(&rtype{name: "azurerm_key_vault", provider: "azurerm", schema: 2, attrs: []A{
		{"access_policy", emptyList(), fComputed},
		{"enable_rbac_authorization", cv(true), 0},
		{"enabled_for_deployment", cv(false), 0},
		{"enabled_for_disk_encryption", cv(false), 0},
		id(func(g *G) string { return g.azureID("Microsoft.KeyVault", "vaults") }),
		location,
		{"name", fn(func(g *G) string { return "kv-" + g.alnum(14) }), fForceNew | fKeep},
		{"network_acls", blk(1, 1, A{"bypass", cs("AzureServices"), 0}, A{"default_action", oneOf("Deny", "Allow"), 0}, A{"ip_rules", emptyList(), 0}), 0},
		{"public_network_access_enabled", boolp(0.3), 0},
		{"purge_protection_enabled", boolp(0.6), 0},
		rg,
		{"sku_name", cs("standard"), 0},
		{"soft_delete_retention_days", cv(90), 0},
		azTags,
		{"tenant_id", fn(func(g *G) string { return g.m.tenant }), 0},
		timeouts,
		{"vault_uri", fn(func(g *G) string { return "https://kv-" + g.alnum(14) + ".vault.azure.net/" }), fComputed},
	}})
	def(&rtype{name: "azurerm_mssql_database", provider: "azurerm", schema: 1, attrs: []A{
		{"auto_pause_delay_in_minutes", cv(0), 0},
		{"collation", cs("SQL_Latin1_General_CP1_CI_AS"), fForceNew},
		{"geo_backup_enabled", cv(true), 0},
		id(func(g *G) string { return g.azureID("Microsoft.Sql", "servers") + "/databases/" + g.phys() }),
		{"license_type", cs("LicenseIncluded"), 0},
		{"long_term_retention_policy", blk(1, 1, A{"monthly_retention", cs("P12M"), 0}, A{"week_of_year", cv(1), 0}, A{"weekly_retention", cs("P4W"), 0}, A{"yearly_retention", cs("PT0S"), 0}), 0},
		{"max_size_gb", num(2, 250), 0},
		name,
		{"read_scale", cv(false), 0},
		{"server_id", fn(func(g *G) string { return g.azureID("Microsoft.Sql", "servers") }), fForceNew},
		{"short_term_retention_policy", blk(1, 1, A{"backup_interval_in_hours", cv(12), 0}, A{"retention_days", cv(7), 0}), 0},
		{"sku_name", oneOf("S0", "S1", "GP_S_Gen5_2", "BC_Gen5_4"), 0},
		{"storage_account_type", cs("Geo"), 0},
		azTags, timeouts,
		{"zone_redundant", boolp(0.3), 0},
	}})
	def(&rtype{name: "azurerm_subnet", provider: "azurerm", attrs: []A{
		{"address_prefixes", strs(1, 1, func(g *G) string { return g.cidr() }), 0},
		{"delegation", emptyList(), 0},
		{"enforce_private_link_endpoint_network_policies", cv(false), 0},
		id(func(g *G) string { return g.azureID("Microsoft.Network", "virtualNetworks") + "/subnets/" + g.phys() }),
		name,
		{"private_endpoint_network_policies_enabled", cv(true), 0},
		rg,
		{"service_endpoints", strs(0, 2, func(g *G) string { return g.pick("Microsoft.Storage", "Microsoft.KeyVault", "Microsoft.Sql") }), 0},
		timeouts,
		{"virtual_network_name", fn(func(g *G) string { return g.m.prefix + "-vnet" }), fForceNew},
	}})

	// ---- Google ----
	labels := []A{
		{"effective_labels", nul(), fComputed},
		{"labels", func(g *G) any { return g.gcpLabels() }, 0},
		{"terraform_labels", nul(), fComputed},
	}
	project := A{"project", fn(func(g *G) string { return g.m.project }), fForceNew}
	selfLink := func(kind string) A {
		return A{"self_link", fn(func(g *G) string {
			return "https://www.googleapis.com/compute/v1/projects/" + g.m.project + "/" + kind + "/" + g.phys()
		}), fComputed}
	}
	def(&rtype{name: "google_compute_instance", provider: "google", schema: 6, attrs: append([]A{
		{"allow_stopping_for_update", cv(true), 0},
		{"boot_disk", blk(1, 1,
			A{"auto_delete", cv(true), 0},
			A{"device_name", cs("persistent-disk-0"), 0},
			A{"initialize_params", blk(1, 1,
				A{"image", oneOf("debian-cloud/debian-12", "ubuntu-os-cloud/ubuntu-2204-lts", "cos-cloud/cos-stable"), 0},
				A{"size", num(10, 200), 0},
				A{"type", oneOf("pd-balanced", "pd-ssd"), 0}), 0},
			A{"mode", cs("READ_WRITE"), 0}), fForceNew},
		{"can_ip_forward", cv(false), 0},
		{"cpu_platform", cs("Intel Cascade Lake"), fComputed},
		{"current_status", cs("RUNNING"), fComputed},
		{"deletion_protection", boolp(0.3), 0},
		{"description", cs(""), 0},
		id(func(g *G) string { return "projects/" + g.m.project + "/zones/" + g.m.zone + "/instances/" + g.phys() }),
		{"instance_id", fn(func(g *G) string { return fmt.Sprint(1000000000000000000 + g.r.Int64N(8000000000000000000)) }), fComputed | fKeep},
		{"machine_type", oneOf("e2-medium", "n2-standard-2", "n2-standard-4", "c3-standard-8"), 0},
		{"metadata", func(g *G) any { return map[string]any{"enable-oslogin": "TRUE"} }, 0},
		name,
		{"network_interface", blk(1, 1,
			A{"network", fn(func(g *G) string { return "projects/" + g.m.project + "/global/networks/" + g.m.prefix }), 0},
			A{"network_ip", fn(func(g *G) string { return g.ip() }), 0},
			A{"stack_type", cs("IPV4_ONLY"), 0},
			A{"subnetwork", fn(func(g *G) string {
				return "projects/" + g.m.project + "/regions/" + g.m.gcpRegion + "/subnetworks/" + g.m.prefix
			}), 0}), fForceNew},
		project,
		{"scheduling", blk(1, 1, A{"automatic_restart", cv(true), 0}, A{"on_host_maintenance", cs("MIGRATE"), 0}, A{"preemptible", cv(false), 0}, A{"provisioning_model", cs("STANDARD"), 0}), 0},
		selfLink("zones/" + "z/instances"),
		{"service_account", blk(1, 1,
			A{"email", fn(func(g *G) string { return g.m.prefix + "@" + g.m.project + ".iam.gserviceaccount.com" }), 0},
			A{"scopes", strs(1, 1, func(*G) string { return "https://www.googleapis.com/auth/cloud-platform" }), 0}), 0},
		{"tags", strs(1, 3, func(g *G) string { return g.pick("web", "internal", "ssh", "allow-health-check") }), 0},
		timeouts,
		{"zone", fn(func(g *G) string { return g.m.zone }), fForceNew},
	}, labels...)})
	def(&rtype{name: "google_storage_bucket", provider: "google", schema: 1, attrs: append([]A{
		{"autoclass", emptyList(), 0},
		{"default_event_based_hold", cv(false), 0},
		{"enable_object_retention", cv(false), 0},
		{"force_destroy", boolp(0.1), 0},
		id(func(g *G) string { return g.phys() + "-" + g.m.project }),
		{"lifecycle_rule", blk(0, 2,
			A{"action", blk(1, 1, A{"storage_class", cs(""), 0}, A{"type", cs("Delete"), 0}), 0},
			A{"condition", blk(1, 1, A{"age", num(7, 365), 0}, A{"with_state", cs("ANY"), 0}), 0}), 0},
		{"location", cs("EU"), fForceNew},
		{"name", fn(func(g *G) string { return g.phys() + "-" + g.m.project }), fForceNew | fKeep},
		project,
		{"public_access_prevention", cs("enforced"), 0},
		{"requester_pays", cv(false), 0},
		selfLink("b"),
		{"storage_class", oneOf("STANDARD", "NEARLINE"), 0},
		timeouts,
		{"uniform_bucket_level_access", cv(true), 0},
		{"url", fn(func(g *G) string { return "gs://" + g.phys() + "-" + g.m.project }), fComputed},
		{"versioning", blk(1, 1, A{"enabled", boolp(0.5), 0}), 0},
	}, labels...)})
	def(&rtype{name: "google_project_iam_member", provider: "google", attrs: []A{
		{"condition", emptyList(), fForceNew},
		{"etag", fn(func(g *G) string { return "BwY" + g.alnum(9) + "=" }), fComputed},
		id(func(g *G) string {
			return g.m.project + "/" + fmt.Sprint(g.key) + "/serviceAccount:" + g.m.prefix + "@" + g.m.project + ".iam.gserviceaccount.com"
		}),
		{"member", fn(func(g *G) string {
			return "serviceAccount:" + g.m.prefix + "@" + g.m.project + ".iam.gserviceaccount.com"
		}), fForceNew},
		project,
		{"role", fn(func(g *G) string {
			if s, ok := g.key.(string); ok {
				return s
			}
			return "roles/viewer"
		}), fForceNew},
	}})
	def(&rtype{name: "google_compute_firewall", provider: "google", schema: 1, attrs: []A{
		{"allow", blk(1, 2, A{"ports", strs(1, 2, func(g *G) string { return g.pick("443", "80", "22", "8080-8090") }), 0}, A{"protocol", cs("tcp"), 0}), 0},
		{"creation_timestamp", fn(func(g *G) string { return g.timestamp() }), fComputed},
		{"deny", emptyList(), 0},
		{"description", cs(""), 0},
		{"destination_ranges", emptyList(), fComputed},
		{"direction", cs("INGRESS"), fForceNew},
		{"disabled", cv(false), 0},
		id(func(g *G) string { return "projects/" + g.m.project + "/global/firewalls/" + g.phys() }),
		{"log_config", emptyList(), 0},
		name,
		{"network", fn(func(g *G) string { return "projects/" + g.m.project + "/global/networks/" + g.m.prefix }), fForceNew},
		{"priority", cv(1000), 0},
		project,
		selfLink("global/firewalls"),
		{"source_ranges", strs(1, 3, func(g *G) string { return g.cidr() }), 0},
		{"source_tags", nul(), 0},
		{"target_tags", strs(1, 2, func(g *G) string { return g.pick("web", "internal", "ssh") }), 0},
		timeouts,
	}})
	def(&rtype{name: "google_service_account", provider: "google", attrs: []A{
		{"account_id", fn(func(g *G) string { return g.m.prefix }), fForceNew | fKeep},
		{"create_ignore_already_exists", nul(), 0},
		{"description", fn(func(g *G) string { return "Workload identity for " + g.m.service }), 0},
		{"disabled", cv(false), 0},
		{"display_name", fn(func(g *G) string { return g.m.service }), 0},
		{"email", fn(func(g *G) string { return g.m.prefix + "@" + g.m.project + ".iam.gserviceaccount.com" }), fComputed},
		id(func(g *G) string {
			return "projects/" + g.m.project + "/serviceAccounts/" + g.m.prefix + "@" + g.m.project + ".iam.gserviceaccount.com"
		}),
		{"member", fn(func(g *G) string {
			return "serviceAccount:" + g.m.prefix + "@" + g.m.project + ".iam.gserviceaccount.com"
		}), fComputed},
		{"name", fn(func(g *G) string { return "projects/" + g.m.project + "/serviceAccounts/" + g.m.prefix }), fComputed | fKeep},
		project, timeouts,
		{"unique_id", fn(func(g *G) string { return fmt.Sprint(100000000000000000 + g.r.Int64N(800000000000000000)) }), fComputed | fKeep},
	}})
	def(&rtype{name: "google_sql_database_instance", provider: "google", attrs: []A{
		{"available_maintenance_versions", emptyList(), fComputed},
		{"connection_name", fn(func(g *G) string { return g.m.project + ":" + g.m.gcpRegion + ":" + g.phys() }), fComputed},
		{"database_version", oneOf("POSTGRES_15", "POSTGRES_16", "MYSQL_8_0"), fForceNew},
		{"deletion_protection", boolp(0.6), 0},
		{"first_ip_address", fn(func(g *G) string { return g.ip() }), fComputed},
		id(func(g *G) string { return g.phys() }),
		{"ip_address", blk(1, 1, A{"ip_address", fn(func(g *G) string { return g.ip() }), 0}, A{"type", cs("PRIVATE"), 0}), fComputed},
		{"maintenance_version", fn(func(g *G) string { return "POSTGRES_16_3.R20240527.01_00" }), fComputed},
		name,
		project,
		{"region", fn(func(g *G) string { return g.m.gcpRegion }), fForceNew},
		{"root_password", nul(), fSensitive},
		{"self_link", fn(func(g *G) string {
			return "https://sqladmin.googleapis.com/sql/v1beta4/projects/" + g.m.project + "/instances/" + g.phys()
		}), fComputed},
		{"service_account_email_address", fn(func(g *G) string {
			return "p" + fmt.Sprint(g.r.IntN(999999999)) + "-" + g.alnum(6) + "@gcp-sa-cloud-sql.iam.gserviceaccount.com"
		}), fComputed},
		{"settings", blk(1, 1,
			A{"activation_policy", cs("ALWAYS"), 0},
			A{"availability_type", oneOf("ZONAL", "REGIONAL"), 0},
			A{"backup_configuration", blk(1, 1, A{"enabled", cv(true), 0}, A{"point_in_time_recovery_enabled", cv(true), 0}, A{"start_time", cs("02:00"), 0}), 0},
			A{"disk_autoresize", cv(true), 0},
			A{"disk_size", num(10, 500), 0},
			A{"disk_type", cs("PD_SSD"), 0},
			A{"ip_configuration", blk(1, 1, A{"ipv4_enabled", cv(false), 0}, A{"private_network", fn(func(g *G) string { return "projects/" + g.m.project + "/global/networks/" + g.m.prefix }), 0}), 0},
			A{"tier", oneOf("db-custom-2-7680", "db-custom-4-15360", "db-f1-micro"), 0},
			A{"user_labels", func(g *G) any { return g.gcpLabels() }, 0},
			A{"version", num(1, 40), 0}), 0},
		timeouts,
	}})
	def(&rtype{name: "google_pubsub_topic", provider: "google", attrs: append([]A{
		id(func(g *G) string { return "projects/" + g.m.project + "/topics/" + g.phys() }),
		{"kms_key_name", cs(""), 0},
		{"message_retention_duration", oneOf("", "86400s", "604800s"), 0},
		{"message_storage_policy", emptyList(), fComputed},
		name, project,
		{"schema_settings", emptyList(), fComputed},
		timeouts,
	}, labels...)})
	def(&rtype{name: "google_kms_crypto_key", provider: "google", schema: 1, attrs: append([]A{
		{"destroy_scheduled_duration", cs("86400s"), fForceNew},
		id(func(g *G) string {
			return "projects/" + g.m.project + "/locations/" + g.m.gcpRegion + "/keyRings/" + g.m.prefix + "/cryptoKeys/" + g.phys()
		}),
		{"import_only", cv(false), fForceNew},
		{"key_ring", fn(func(g *G) string {
			return "projects/" + g.m.project + "/locations/" + g.m.gcpRegion + "/keyRings/" + g.m.prefix
		}), fForceNew},
		name,
		{"purpose", cs("ENCRYPT_DECRYPT"), fForceNew},
		{"rotation_period", oneOf("7776000s", "2592000s"), 0},
		{"skip_initial_version_creation", cv(false), fForceNew},
		timeouts,
		{"version_template", blk(1, 1, A{"algorithm", cs("GOOGLE_SYMMETRIC_ENCRYPTION"), 0}, A{"protection_level", oneOf("SOFTWARE", "HSM"), 0}), 0},
	}, labels...)})
	def(&rtype{name: "google_compute_disk", provider: "google", schema: 1, attrs: append([]A{
		{"creation_timestamp", fn(func(g *G) string { return g.timestamp() }), fComputed},
		{"description", cs(""), fForceNew},
		{"disk_id", fn(func(g *G) string { return fmt.Sprint(1000000000000000000 + g.r.Int64N(8000000000000000000)) }), fComputed | fKeep},
		id(func(g *G) string { return "projects/" + g.m.project + "/zones/" + g.m.zone + "/disks/" + g.phys() }),
		{"image", cs(""), fForceNew},
		{"label_fingerprint", fn(func(g *G) string { return g.alnum(11) + "=" }), fComputed},
		{"last_attach_timestamp", cs(""), fComputed},
		name,
		{"physical_block_size_bytes", cv(4096), fComputed},
		project,
		{"provisioned_iops", cv(0), fComputed},
		selfLink("zones/z/disks"),
		{"size", num(10, 2000), 0},
		{"snapshot", cs(""), fForceNew},
		timeouts,
		{"type", oneOf("pd-balanced", "pd-ssd", "pd-standard"), fForceNew},
		{"users", emptyList(), fComputed},
		{"zone", fn(func(g *G) string { return g.m.zone }), fForceNew},
	}, labels...)})

	// ---- Kubernetes ----
	kid := id(func(g *G) string { return g.m.namespace + "/" + g.phys() })
	container := []A{
		{"args", emptyList(), 0},
		{"command", emptyList(), 0},
		{"env", blk(1, 2,
			A{"name", oneOf("LOG_LEVEL", "PORT", "DATABASE_HOST", "OTEL_EXPORTER_OTLP_ENDPOINT", "FEATURE_FLAGS", "REGION"), 0},
			A{"value", fn(func(g *G) string {
				return g.pick("info", "8080", g.ip(), "http://otel-collector:4317", "a,b,c", "eu-west-1")
			}), 0},
			A{"value_from", emptyList(), 0}), 0},
		{"image", fn(func(g *G) string {
			return "ghcr.io/acme/" + g.m.service + ":" + fmt.Sprintf("v1.%d.%d", g.r.IntN(40), g.r.IntN(20))
		}), 0},
		{"image_pull_policy", cs("IfNotPresent"), 0},
		{"name", fn(func(g *G) string { return g.m.service }), 0},
		{"port", blk(1, 1, A{"container_port", oneInt(8080, 9090), 0}, A{"name", oneOf("http", "metrics"), 0}, A{"protocol", cs("TCP"), 0}), 0},
		{"resources", blk(1, 1,
			A{"limits", func(g *G) any {
				return map[string]any{"cpu": g.pick("500m", "1", "2"), "memory": g.pick("512Mi", "1Gi", "2Gi")}
			}, 0},
			A{"requests", func(g *G) any {
				return map[string]any{"cpu": g.pick("100m", "250m"), "memory": g.pick("128Mi", "256Mi")}
			}, 0}), 0},
		{"security_context", blk(1, 1, A{"allow_privilege_escalation", cv(false), 0}, A{"read_only_root_filesystem", cv(true), 0}, A{"run_as_non_root", cv(true), 0}), 0},
	}
	def(&rtype{name: "kubernetes_namespace", provider: "kubernetes", attrs: []A{
		kid, k8sMetadata(), timeouts,
		{"wait_for_default_service_account", cv(false), 0},
	}})
	def(&rtype{name: "kubernetes_deployment", provider: "kubernetes", schema: 1, attrs: []A{
		kid, k8sMetadata(),
		{"spec", blk(1, 1,
			A{"min_ready_seconds", cv(0), 0},
			A{"paused", cv(false), 0},
			A{"progress_deadline_seconds", cv(600), 0},
			A{"replicas", oneInt(1, 2, 3, 6), 0},
			A{"revision_history_limit", cv(10), 0},
			A{"selector", blk(1, 1, A{"match_labels", func(g *G) any { return map[string]any{"app.kubernetes.io/name": g.m.service} }, 0}), 0},
			A{"strategy", blk(1, 1, A{"type", cs("RollingUpdate"), 0}), 0},
			A{"template", blk(1, 1,
				A{"metadata", blk(1, 1, A{"labels", func(g *G) any { return map[string]any{"app.kubernetes.io/name": g.m.service} }, 0}), 0},
				A{"spec", blk(1, 1,
					A{"container", blk(1, 1, container...), 0},
					A{"service_account_name", fn(func(g *G) string { return g.m.service }), 0},
					A{"termination_grace_period_seconds", cv(30), 0}), 0}), 0}), 0},
		timeouts,
		{"wait_for_rollout", cv(true), 0},
	}})
	def(&rtype{name: "kubernetes_service", provider: "kubernetes", attrs: []A{
		kid, k8sMetadata(),
		{"spec", blk(1, 1,
			A{"cluster_ip", fn(func(g *G) string { return "172.20." + fmt.Sprint(g.r.IntN(256)) + "." + fmt.Sprint(g.r.IntN(256)) }), 0},
			A{"port", blk(1, 2, A{"name", oneOf("http", "grpc"), 0}, A{"port", oneInt(80, 443), 0}, A{"protocol", cs("TCP"), 0}, A{"target_port", cs("8080"), 0}), 0},
			A{"selector", func(g *G) any { return map[string]any{"app.kubernetes.io/name": g.m.service} }, 0},
			A{"session_affinity", cs("None"), 0},
			A{"type", oneOf("ClusterIP", "LoadBalancer"), 0}), 0},
		{"status", blk(1, 1, A{"load_balancer", emptyList(), 0}), fComputed},
		timeouts,
		{"wait_for_load_balancer", cv(true), 0},
	}})
	def(&rtype{name: "kubernetes_config_map", provider: "kubernetes", attrs: []A{
		{"binary_data", nul(), 0},
		{"data", func(g *G) any {
			m := map[string]any{}
			for i, n := 0, 3+g.r.IntN(6); i < n; i++ {
				m[g.pick("LOG_LEVEL", "APP_MODE", "CACHE_TTL", "UPSTREAM_URL", "MAX_CONNECTIONS", "FEATURE_X", "REGION", "TIMEOUT_MS")+fmt.Sprint(i)] = g.alnum(8 + g.r.IntN(24))
			}
			return m
		}, 0},
		kid, k8sMetadata(),
		{"immutable", cv(false), 0},
	}})
	def(&rtype{name: "kubernetes_secret", provider: "kubernetes", attrs: []A{
		{"binary_data", nul(), fSensitive},
		{"data", func(g *G) any {
			return map[string]any{"username": g.m.service, "password": g.alnum(32), "api_key": g.alnum(40)}
		}, fSensitive},
		kid, k8sMetadata(),
		{"immutable", cv(false), 0},
		timeouts,
		{"type", oneOf("Opaque", "kubernetes.io/tls"), fForceNew},
		{"wait_for_service_account_token", cv(true), 0},
	}})
	def(&rtype{name: "kubernetes_service_account", provider: "kubernetes", attrs: []A{
		{"automount_service_account_token", cv(true), 0},
		{"default_secret_name", cs(""), fComputed},
		{"image_pull_secret", emptyList(), 0},
		kid, k8sMetadata(),
		{"secret", emptyList(), 0},
		timeouts,
	}})
	def(&rtype{name: "kubernetes_role_binding", provider: "kubernetes", attrs: []A{
		kid, k8sMetadata(),
		{"role_ref", blk(1, 1, A{"api_group", cs("rbac.authorization.k8s.io"), 0}, A{"kind", oneOf("Role", "ClusterRole"), 0}, A{"name", oneOf("view", "edit", "secret-reader"), 0}), fForceNew},
		{"subject", blk(1, 2, A{"api_group", cs(""), 0}, A{"kind", cs("ServiceAccount"), 0}, A{"name", fn(func(g *G) string { return g.m.service }), 0}, A{"namespace", fn(func(g *G) string { return g.m.namespace }), 0}), 0},
	}})
	def(&rtype{name: "kubernetes_ingress_v1", provider: "kubernetes", attrs: []A{
		kid, k8sMetadata(),
		{"spec", blk(1, 1,
			A{"ingress_class_name", cs("nginx"), 0},
			A{"rule", blk(1, 2,
				A{"host", fn(func(g *G) string { return g.phys() + ".apps.example.com" }), 0},
				A{"http", blk(1, 1, A{"path", blk(1, 2,
					A{"backend", blk(1, 1, A{"service", blk(1, 1, A{"name", fn(func(g *G) string { return g.m.service }), 0}, A{"port", blk(1, 1, A{"number", cv(80), 0}), 0}), 0}), 0},
					A{"path", oneOf("/", "/api", "/static"), 0},
					A{"path_type", cs("Prefix"), 0}), 0}), 0}), 0},
			A{"tls", blk(1, 1, A{"hosts", strs(1, 1, func(g *G) string { return g.phys() + ".apps.example.com" }), 0}, A{"secret_name", fn(func(g *G) string { return g.phys() + "-tls" }), 0}), 0}), 0},
		{"status", blk(1, 1, A{"load_balancer", emptyList(), 0}), fComputed},
		timeouts,
		{"wait_for_load_balancer", cv(false), 0},
	}})
}

// providerSource is the provider_name of resources of a provider.
var providerSource = map[string]string{
	"aws":        "registry.terraform.io/hashicorp/aws",
	"azurerm":    "registry.terraform.io/hashicorp/azurerm",
	"google":     "registry.terraform.io/hashicorp/google",
	"kubernetes": "registry.terraform.io/hashicorp/kubernetes",
}
