package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
)

// The throughput plan: 20 resource changes of one service's dev stack, in
// the JSON format of `terraform show -json` (format_version 1.2, Terraform
// 1.9.5), with planned_values, prior_state and configuration as Terraform
// writes them. bench/plangen's plans mix production, IAM, secrets and
// deletes of stateful resources, which the default policy never allows in
// one go; this one is what a routine dev deploy looks like, so the policy
// allows it and every check ends with a signed grant.
//
// Each request gets its own plan: the Deploy tag of aws_instance.api[0]
// carries a sequence number, so the plan's digest (and the resume key)
// differs and every request really creates a check.

const (
	benchWorkspace   = "payments-dev"
	benchEnvironment = "dev"
	// seqMark stands for the request's sequence number in the rendered plan.
	seqMark = "@@SEQ@@"
)

// benchPlan is a rendered plan with slots for the sequence number (the
// Deploy tag is in tags and tags_all, in resource_changes and in
// planned_values).
type benchPlan struct {
	parts   [][]byte // around the slots
	changes int
	bytes   int // without the sequence numbers
}

// body returns the plan of request n.
func (p *benchPlan) body(n int64) []byte {
	b := make([]byte, 0, p.bytes+len(p.parts)*20)
	for i, part := range p.parts {
		if i > 0 {
			b = strconv.AppendInt(b, n, 10)
		}
		b = append(b, part...)
	}
	return b
}

type change struct {
	typ, name string
	index     any // nil, an int (count) or a string (for_each)
	actions   []string
	before    map[string]any // nil for a create
	after     map[string]any
	unknown   map[string]any // after_unknown
	exprs     map[string]any // configuration expressions
}

func (c *change) address() string {
	a := "module.app." + c.typ + "." + c.name
	switch i := c.index.(type) {
	case int:
		a += "[" + strconv.Itoa(i) + "]"
	case string:
		a += `["` + i + `"]`
	}
	return a
}

const (
	account = "318452907716"
	region  = "eu-west-1"
	vpc     = "vpc-0d4c1f2e3a5b69788"
)

func tags(extra ...string) map[string]any {
	t := map[string]any{"Environment": "dev", "Team": "payments", "Service": "payments-api", "CostCenter": "CC-2041"}
	for i := 0; i+1 < len(extra); i += 2 {
		t[extra[i]] = extra[i+1]
	}
	return t
}

func tagsAll(t map[string]any) map[string]any {
	all := maps.Clone(t)
	all["ManagedBy"] = "terraform"
	all["Repository"] = "acme/payments-infra"
	return all
}

// withTags sets tags and tags_all on a copy of m.
func withTags(m map[string]any, t map[string]any) map[string]any {
	m = maps.Clone(m)
	m["tags"] = t
	m["tags_all"] = tagsAll(t)
	return m
}

func set(m map[string]any, kv ...any) map[string]any {
	m = maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func ref(refs ...string) map[string]any { return map[string]any{"references": refs} }
func constant(v any) map[string]any     { return map[string]any{"constant_value": v} }

func instance(i int, typ string) map[string]any {
	return withTags(map[string]any{
		"ami":                         "ami-0a8e758f5e873d1c1",
		"arn":                         fmt.Sprintf("arn:aws:ec2:%s:%s:instance/i-0c1d2e3f4a5b6c7%02d", region, account, i),
		"associate_public_ip_address": false,
		"availability_zone":           fmt.Sprintf("%s%c", region, 'a'+i%3),
		"disable_api_stop":            false,
		"disable_api_termination":     false,
		"ebs_optimized":               true,
		"iam_instance_profile":        "payments-api-dev",
		"id":                          fmt.Sprintf("i-0c1d2e3f4a5b6c7%02d", i),
		"instance_type":               typ,
		"key_name":                    nil,
		"monitoring":                  true,
		"private_ip":                  fmt.Sprintf("10.42.%d.%d", 10+i, 20+i),
		"subnet_id":                   fmt.Sprintf("subnet-0a1b2c3d4e5f60%03d", i),
		"vpc_security_group_ids":      []any{"sg-0b7c6d5e4f3a21900"},
		"metadata_options": []any{map[string]any{
			"http_endpoint": "enabled", "http_put_response_hop_limit": 1, "http_tokens": "required", "instance_metadata_tags": "disabled",
		}},
		"root_block_device": []any{map[string]any{
			"delete_on_termination": true, "encrypted": true, "iops": 3000, "throughput": 125, "volume_size": 30, "volume_type": "gp3",
		}},
	}, tags("Name", fmt.Sprintf("payments-api-dev-%d", i)))
}

func alarm(name, metric string, threshold float64) map[string]any {
	return withTags(map[string]any{
		"actions_enabled":     true,
		"alarm_actions":       []any{fmt.Sprintf("arn:aws:sns:%s:%s:payments-dev-alerts", region, account)},
		"alarm_description":   "payments-api dev: " + name,
		"alarm_name":          "payments-api-dev-" + name,
		"comparison_operator": "GreaterThanThreshold",
		"datapoints_to_alarm": 3,
		"dimensions":          map[string]any{"LoadBalancer": "app/payments-api-dev/5f0c2a7b9e1d3c48"},
		"evaluation_periods":  5,
		"metric_name":         metric,
		"namespace":           "AWS/ApplicationELB",
		"ok_actions":          []any{},
		"period":              60,
		"statistic":           "Average",
		"threshold":           threshold,
		"treat_missing_data":  "notBreaching",
	}, tags())
}

func lambda(name string, mem int) map[string]any {
	return withTags(map[string]any{
		"architectures":                  []any{"arm64"},
		"arn":                            fmt.Sprintf("arn:aws:lambda:%s:%s:function:payments-dev-%s", region, account, name),
		"function_name":                  "payments-dev-" + name,
		"handler":                        "bootstrap",
		"memory_size":                    mem,
		"package_type":                   "Zip",
		"reserved_concurrent_executions": -1,
		"role":                           fmt.Sprintf("arn:aws:iam::%s:role/payments-dev-lambda", account),
		"runtime":                        "provided.al2023",
		"s3_bucket":                      "acme-payments-dev-artifacts",
		"s3_key":                         "lambda/" + name + "/v1.41.0.zip",
		"timeout":                        30,
		"environment":                    []any{map[string]any{"variables": map[string]any{"LOG_LEVEL": "info", "STAGE": "dev"}}},
		"tracing_config":                 []any{map[string]any{"mode": "Active"}},
		"vpc_config": []any{map[string]any{
			"security_group_ids": []any{"sg-0b7c6d5e4f3a21900"},
			"subnet_ids":         []any{"subnet-0a1b2c3d4e5f60000", "subnet-0a1b2c3d4e5f60001"},
		}},
	}, tags("Function", name))
}

// benchChanges are the 20 changes: updates, creates and one
// create-before-destroy replacement, none of them sensitive, none destroying
// data, all tagged dev.
func benchChanges() []*change {
	var cs []*change
	add := func(c *change) { cs = append(cs, c) }
	upd := []string{"update"}
	create := []string{"create"}

	// The instances: a new size, and the Deploy tag that varies per request.
	for i := range 2 {
		before := instance(i, "t3.medium")
		t := tags("Name", fmt.Sprintf("payments-api-dev-%d", i), "Deploy", "v1.41.0")
		if i == 0 {
			t["Deploy"] = "bench-" + seqMark
		}
		add(&change{typ: "aws_instance", name: "api", index: i, actions: upd, before: before,
			after: withTags(set(before, "instance_type", "t3.large"), t),
			exprs: map[string]any{"ami": ref("data.aws_ami.al2023.id"), "instance_type": ref("var.instance_type"), "subnet_id": ref("var.subnet_ids", "count.index")}})
	}
	newInst := set(instance(2, "t3.large"), "arn", nil, "id", nil, "private_ip", nil)
	add(&change{typ: "aws_instance", name: "api", index: 2, actions: create, after: newInst,
		unknown: map[string]any{"arn": true, "id": true, "private_ip": true, "tags": map[string]any{}, "tags_all": map[string]any{}},
		exprs:   map[string]any{"ami": ref("data.aws_ami.al2023.id"), "instance_type": ref("var.instance_type")}})

	lt := withTags(map[string]any{
		"arn":                    fmt.Sprintf("arn:aws:ec2:%s:%s:launch-template/lt-0f1e2d3c4b5a69788", region, account),
		"default_version":        14,
		"id":                     "lt-0f1e2d3c4b5a69788",
		"image_id":               "ami-0a8e758f5e873d1c1",
		"instance_type":          "t3.medium",
		"latest_version":         14,
		"name":                   "payments-workers-dev",
		"update_default_version": true,
		"vpc_security_group_ids": []any{"sg-0b7c6d5e4f3a21900"},
		"user_data":              "IyEvYmluL2Jhc2gKc2V0IC1ldQpleGVjIC9vcHQvd29ya2VyL3J1bg==",
		"iam_instance_profile":   []any{map[string]any{"name": "payments-workers-dev"}},
		"monitoring":             []any{map[string]any{"enabled": true}},
	}, tags())
	add(&change{typ: "aws_launch_template", name: "workers", actions: upd, before: lt,
		after:   set(lt, "image_id", "ami-07b1e3c5d7f9a2b46", "latest_version", nil, "default_version", nil),
		unknown: map[string]any{"latest_version": true, "default_version": true},
		exprs:   map[string]any{"image_id": ref("data.aws_ami.al2023.id"), "name": constant("payments-workers-dev")}})

	asg := map[string]any{
		"arn":                       fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:5e1f:autoScalingGroupName/payments-workers-dev", region, account),
		"desired_capacity":          2,
		"health_check_grace_period": 120,
		"health_check_type":         "ELB",
		"id":                        "payments-workers-dev",
		"max_size":                  6,
		"min_size":                  1,
		"name":                      "payments-workers-dev",
		"target_group_arns":         []any{fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/payments-api-dev/9a8b7c6d5e4f3a21", region, account)},
		"vpc_zone_identifier":       []any{"subnet-0a1b2c3d4e5f60000", "subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"},
		"launch_template":           []any{map[string]any{"id": "lt-0f1e2d3c4b5a69788", "name": "payments-workers-dev", "version": "$Latest"}},
		"tag": []any{
			map[string]any{"key": "Environment", "propagate_at_launch": true, "value": "dev"},
			map[string]any{"key": "Team", "propagate_at_launch": true, "value": "payments"},
		},
	}
	add(&change{typ: "aws_autoscaling_group", name: "workers", actions: upd, before: asg,
		after: set(asg, "desired_capacity", 3, "max_size", 8), exprs: map[string]any{"desired_capacity": ref("var.workers")}})

	tg := withTags(map[string]any{
		"arn":                  fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/payments-api-dev/9a8b7c6d5e4f3a21", region, account),
		"deregistration_delay": "300",
		"id":                   fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/payments-api-dev/9a8b7c6d5e4f3a21", region, account),
		"name":                 "payments-api-dev",
		"port":                 8080,
		"protocol":             "HTTP",
		"target_type":          "instance",
		"vpc_id":               vpc,
		"health_check": []any{map[string]any{
			"enabled": true, "healthy_threshold": 3, "interval": 30, "matcher": "200", "path": "/healthz",
			"port": "traffic-port", "protocol": "HTTP", "timeout": 5, "unhealthy_threshold": 3,
		}},
	}, tags())
	tgAfter := set(tg, "deregistration_delay", "60")
	tgAfter["health_check"] = []any{map[string]any{
		"enabled": true, "healthy_threshold": 2, "interval": 15, "matcher": "200", "path": "/readyz",
		"port": "traffic-port", "protocol": "HTTP", "timeout": 5, "unhealthy_threshold": 3,
	}}
	add(&change{typ: "aws_lb_target_group", name: "api", actions: upd, before: tg, after: tgAfter,
		exprs: map[string]any{"vpc_id": ref("var.vpc_id"), "port": constant(8080)}})

	add(&change{typ: "aws_lb_listener_rule", name: "api_v2", actions: create,
		after: withTags(map[string]any{
			"arn":          nil,
			"id":           nil,
			"listener_arn": fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:listener/app/payments-api-dev/5f0c2a7b9e1d3c48/0a1b2c3d4e5f6789", region, account),
			"priority":     120,
			"action":       []any{map[string]any{"type": "forward", "target_group_arn": fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/payments-api-dev/9a8b7c6d5e4f3a21", region, account)}},
			"condition":    []any{map[string]any{"path_pattern": []any{map[string]any{"values": []any{"/v2/*"}}}}},
		}, tags()),
		unknown: map[string]any{"arn": true, "id": true},
		exprs:   map[string]any{"listener_arn": ref("aws_lb_listener.https.arn"), "priority": constant(120)}})

	td := withTags(map[string]any{
		"arn":                      fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/payments-api-dev:87", region, account),
		"container_definitions":    `[{"name":"api","image":"318452907716.dkr.ecr.eu-west-1.amazonaws.com/payments-api:v1.40.2","cpu":512,"memory":1024,"essential":true,"portMappings":[{"containerPort":8080,"protocol":"tcp"}],"environment":[{"name":"STAGE","value":"dev"},{"name":"LOG_LEVEL","value":"info"}],"logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"/ecs/payments-api-dev","awslogs-region":"eu-west-1","awslogs-stream-prefix":"api"}}}]`,
		"cpu":                      "512",
		"execution_role_arn":       fmt.Sprintf("arn:aws:iam::%s:role/payments-dev-ecs-exec", account),
		"family":                   "payments-api-dev",
		"id":                       "payments-api-dev",
		"memory":                   "1024",
		"network_mode":             "awsvpc",
		"requires_compatibilities": []any{"FARGATE"},
		"revision":                 87,
		"task_role_arn":            fmt.Sprintf("arn:aws:iam::%s:role/payments-dev-api", account),
	}, tags())
	tdAfter := set(td, "arn", nil, "revision", nil, "id", nil,
		"container_definitions", `[{"name":"api","image":"318452907716.dkr.ecr.eu-west-1.amazonaws.com/payments-api:v1.41.0","cpu":512,"memory":1024,"essential":true,"portMappings":[{"containerPort":8080,"protocol":"tcp"}],"environment":[{"name":"STAGE","value":"dev"},{"name":"LOG_LEVEL","value":"info"}],"logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"/ecs/payments-api-dev","awslogs-region":"eu-west-1","awslogs-stream-prefix":"api"}}}]`)
	add(&change{typ: "aws_ecs_task_definition", name: "api", actions: []string{"create", "delete"}, before: td, after: tdAfter,
		unknown: map[string]any{"arn": true, "revision": true, "id": true},
		exprs:   map[string]any{"container_definitions": ref("local.container_definitions"), "family": constant("payments-api-dev")}})

	svc := withTags(map[string]any{
		"cluster":                            fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/payments-dev", region, account),
		"deployment_maximum_percent":         200,
		"deployment_minimum_healthy_percent": 100,
		"desired_count":                      2,
		"enable_execute_command":             false,
		"id":                                 fmt.Sprintf("arn:aws:ecs:%s:%s:service/payments-dev/payments-api", region, account),
		"launch_type":                        "FARGATE",
		"name":                               "payments-api",
		"task_definition":                    fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/payments-api-dev:87", region, account),
		"network_configuration": []any{map[string]any{
			"assign_public_ip": false, "security_groups": []any{"sg-0b7c6d5e4f3a21900"},
			"subnets": []any{"subnet-0a1b2c3d4e5f60000", "subnet-0a1b2c3d4e5f60001"},
		}},
		"load_balancer": []any{map[string]any{"container_name": "api", "container_port": 8080,
			"target_group_arn": fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/payments-api-dev/9a8b7c6d5e4f3a21", region, account)}},
	}, tags())
	add(&change{typ: "aws_ecs_service", name: "api", actions: upd, before: svc, after: set(svc, "task_definition", nil),
		unknown: map[string]any{"task_definition": true},
		exprs:   map[string]any{"task_definition": ref("aws_ecs_task_definition.api.arn"), "cluster": ref("var.cluster_arn")}})

	resize := lambda("resize", 512)
	add(&change{typ: "aws_lambda_function", name: "resize", actions: upd, before: resize,
		after: set(resize, "memory_size", 1024, "s3_key", "lambda/resize/v1.41.0.zip"),
		exprs: map[string]any{"s3_key": ref("local.artifact_prefix"), "role": ref("aws_iam_role.lambda.arn")}})
	thumb := set(lambda("thumbnail", 256), "arn", nil)
	add(&change{typ: "aws_lambda_function", name: "thumbnail", actions: create, after: thumb,
		unknown: map[string]any{"arn": true, "tags": map[string]any{}, "tags_all": map[string]any{}},
		exprs:   map[string]any{"s3_key": ref("local.artifact_prefix"), "role": ref("aws_iam_role.lambda.arn")}})

	cpu := alarm("cpu-high", "CPUUtilization", 80)
	add(&change{typ: "aws_cloudwatch_metric_alarm", name: "alarms", index: "cpu_high", actions: upd, before: cpu,
		after: set(cpu, "threshold", 85.0, "evaluation_periods", 3), exprs: map[string]any{"threshold": ref("each.value.threshold")}})
	for _, a := range []struct{ key, name, metric string }{
		{"latency_p99", "latency-p99", "TargetResponseTime"},
		{"errors_5xx", "errors-5xx", "HTTPCode_Target_5XX_Count"},
	} {
		add(&change{typ: "aws_cloudwatch_metric_alarm", name: "alarms", index: a.key, actions: create,
			after: set(alarm(a.name, a.metric, 1.5), "arn", nil, "id", nil), unknown: map[string]any{"arn": true, "id": true},
			exprs: map[string]any{"threshold": ref("each.value.threshold")}})
	}

	rec := map[string]any{
		"allow_overwrite": nil,
		"fqdn":            "api.payments.dev.acme.internal",
		"id":              "Z0419283746ABCDEFGHIJ_api.payments.dev.acme.internal_CNAME",
		"name":            "api.payments.dev.acme.internal",
		"records":         []any{"internal-payments-api-dev-1234567890.eu-west-1.elb.amazonaws.com"},
		"ttl":             300,
		"type":            "CNAME",
		"zone_id":         "Z0419283746ABCDEFGHIJ",
	}
	add(&change{typ: "aws_route53_record", name: "api", actions: upd, before: rec, after: set(rec, "ttl", 60),
		exprs: map[string]any{"zone_id": ref("var.zone_id"), "records": ref("aws_lb.api.dns_name")}})

	topic := withTags(map[string]any{
		"arn":               fmt.Sprintf("arn:aws:sns:%s:%s:payments-dev-alerts", region, account),
		"display_name":      "",
		"fifo_topic":        false,
		"id":                fmt.Sprintf("arn:aws:sns:%s:%s:payments-dev-alerts", region, account),
		"kms_master_key_id": "alias/aws/sns",
		"name":              "payments-dev-alerts",
	}, tags())
	add(&change{typ: "aws_sns_topic", name: "alerts", actions: upd, before: topic,
		after: withTags(set(topic, "display_name", "payments dev alerts"), tags("OnCall", "payments-dev")),
		exprs: map[string]any{"name": constant("payments-dev-alerts")}})

	add(&change{typ: "aws_sqs_queue", name: "jobs", actions: create,
		after: withTags(map[string]any{
			"arn": nil, "id": nil, "url": nil,
			"name":                       "payments-dev-jobs",
			"delay_seconds":              0,
			"fifo_queue":                 false,
			"max_message_size":           262144,
			"message_retention_seconds":  345600,
			"receive_wait_time_seconds":  20,
			"sqs_managed_sse_enabled":    true,
			"visibility_timeout_seconds": 120,
		}, tags()),
		unknown: map[string]any{"arn": true, "id": true, "url": true},
		exprs:   map[string]any{"name": constant("payments-dev-jobs"), "visibility_timeout_seconds": constant(120)}})

	bucket := withTags(map[string]any{
		"arn":                         "arn:aws:s3:::acme-payments-dev-assets",
		"bucket":                      "acme-payments-dev-assets",
		"bucket_domain_name":          "acme-payments-dev-assets.s3.amazonaws.com",
		"bucket_regional_domain_name": "acme-payments-dev-assets.s3.eu-west-1.amazonaws.com",
		"force_destroy":               false,
		"hosted_zone_id":              "Z1BKCTXD74EZPE",
		"id":                          "acme-payments-dev-assets",
		"object_lock_enabled":         false,
		"region":                      region,
	}, tags())
	add(&change{typ: "aws_s3_bucket", name: "assets", actions: upd, before: bucket,
		after: withTags(bucket, tags("DataClass", "internal")), exprs: map[string]any{"bucket": constant("acme-payments-dev-assets")}})

	param := withTags(map[string]any{
		"arn":       fmt.Sprintf("arn:aws:ssm:%s:%s:parameter/payments/dev/feature-flags", region, account),
		"data_type": "text",
		"id":        "/payments/dev/feature-flags",
		"name":      "/payments/dev/feature-flags",
		"tier":      "Standard",
		"type":      "String",
		"value":     `{"new_checkout":false,"async_refunds":true}`,
		"version":   12,
	}, tags())
	add(&change{typ: "aws_ssm_parameter", name: "feature_flags", actions: upd, before: param,
		after: set(param, "value", `{"new_checkout":true,"async_refunds":true}`, "version", nil), unknown: map[string]any{"version": true},
		exprs: map[string]any{"value": ref("local.feature_flags")}})

	logs := withTags(map[string]any{
		"arn":               fmt.Sprintf("arn:aws:logs:%s:%s:log-group:/ecs/payments-api-dev", region, account),
		"id":                "/ecs/payments-api-dev",
		"kms_key_id":        "",
		"log_group_class":   "STANDARD",
		"name":              "/ecs/payments-api-dev",
		"retention_in_days": 7,
		"skip_destroy":      false,
	}, tags())
	add(&change{typ: "aws_cloudwatch_log_group", name: "api", actions: upd, before: logs, after: set(logs, "retention_in_days", 14),
		exprs: map[string]any{"name": constant("/ecs/payments-api-dev"), "retention_in_days": ref("var.log_retention_days")}})

	return cs
}

// emptyLike is {} for every map and [] of them for every list in v: the
// shape of before_sensitive and after_sensitive.
func emptyLike(v map[string]any) map[string]any {
	out := map[string]any{}
	for k, x := range v {
		switch x := x.(type) {
		case map[string]any:
			out[k] = map[string]any{}
		case []any:
			l := make([]any, len(x))
			for i, e := range x {
				if _, ok := e.(map[string]any); ok {
					l[i] = map[string]any{}
				} else {
					l[i] = false
				}
			}
			out[k] = l
		}
	}
	return out
}

func resourceValues(c *change, values map[string]any) map[string]any {
	r := map[string]any{
		"address": c.address(), "mode": "managed", "type": c.typ, "name": c.name,
		"provider_name": "registry.terraform.io/hashicorp/aws", "schema_version": 0,
		"values": values, "sensitive_values": emptyLike(values),
	}
	if c.index != nil {
		r["index"] = c.index
	}
	return r
}

// newBenchPlan renders the plan once.
func newBenchPlan() (*benchPlan, error) {
	cs := benchChanges()
	var rcs, planned, prior []any
	configs := map[string]map[string]any{}
	for _, c := range cs {
		rc := map[string]any{
			"address": c.address(), "module_address": "module.app", "mode": "managed", "type": c.typ, "name": c.name,
			"provider_name": "registry.terraform.io/hashicorp/aws",
			"change": map[string]any{
				"actions": c.actions, "before": c.before, "after": c.after,
				"after_unknown":    orEmpty(c.unknown),
				"before_sensitive": sensitive(c.before), "after_sensitive": emptyLike(c.after),
			},
		}
		if c.index != nil {
			rc["index"] = c.index
		}
		rcs = append(rcs, rc)
		planned = append(planned, resourceValues(c, c.after))
		if c.before != nil {
			prior = append(prior, resourceValues(c, c.before))
		}
		key := "module.app." + c.typ + "." + c.name
		if _, ok := configs[key]; !ok {
			cfg := map[string]any{
				"address": c.typ + "." + c.name, "mode": "managed", "type": c.typ, "name": c.name,
				"provider_config_key": "aws", "expressions": c.exprs, "schema_version": 0,
			}
			switch c.index.(type) {
			case int:
				cfg["count_expression"] = ref("var.instance_count")
			case string:
				cfg["for_each_expression"] = ref("local.alarms")
			}
			configs[key] = cfg
		}
	}
	var cfgResources []any
	for _, c := range cs {
		key := "module.app." + c.typ + "." + c.name
		if cfg, ok := configs[key]; ok {
			cfgResources = append(cfgResources, cfg)
			delete(configs, key)
		}
	}
	doc := map[string]any{
		"format_version":    "1.2",
		"terraform_version": "1.9.5",
		"variables": map[string]any{
			"environment":    map[string]any{"value": "dev"},
			"instance_count": map[string]any{"value": 3},
			"instance_type":  map[string]any{"value": "t3.large"},
			"workers":        map[string]any{"value": 3},
		},
		"planned_values": map[string]any{"root_module": map[string]any{
			"child_modules": []any{map[string]any{"address": "module.app", "resources": planned}},
		}},
		"resource_changes": rcs,
		"prior_state": map[string]any{"format_version": "1.0", "terraform_version": "1.9.5", "values": map[string]any{
			"root_module": map[string]any{"child_modules": []any{map[string]any{"address": "module.app", "resources": prior}}},
		}},
		"configuration": map[string]any{
			"provider_config": map[string]any{"aws": map[string]any{
				"name": "aws", "full_name": "registry.terraform.io/hashicorp/aws", "version_constraint": "~> 5.70",
				"expressions": map[string]any{"region": constant(region)},
			}},
			"root_module": map[string]any{"module_calls": map[string]any{"app": map[string]any{
				"source": "./modules/service", "expressions": map[string]any{"environment": ref("var.environment")},
				"module": map[string]any{"resources": cfgResources},
			}}},
		},
		"timestamp": "2026-11-30T09:00:00Z",
		"applyable": true,
		"complete":  true,
		"errored":   false,
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	parts := bytes.Split(b, []byte(seqMark))
	// tags and tags_all, in resource_changes and in planned_values.
	if len(parts) != 5 {
		return nil, fmt.Errorf("plan: sequence mark found %d times, want 4", len(parts)-1)
	}
	return &benchPlan{parts: parts, changes: len(cs), bytes: len(b) - (len(parts)-1)*len(seqMark)}, nil
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func sensitive(before map[string]any) any {
	if before == nil {
		return false
	}
	return emptyLike(before)
}
