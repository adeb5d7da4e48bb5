package httpapi

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stepgate/stepgate/internal/api"
)

var metricName = regexp.MustCompile(`\bstepgate_[a-z_]+`)

// TestDashboardsUseRealMetrics: every stepgate metric the Grafana
// dashboard and the Prometheus alerts name is one the server exports, so
// that no panel or alert silently watches nothing.
func TestDashboardsUseRealMetrics(t *testing.T) {
	s := newStack(t, stackOpts{})
	s.svc.SetNotifier(s.api.Observer())
	e := &env{srv: s.srv}
	e.do(t, "POST", "/v1/checks?workspace=billing-prod", s.token(t), planBody(t, "prod-iam.plan.json"))
	s.api.Observer().Notify(context.Background(), "check.approved", &api.Check{CreatedAt: time.Now().Add(-time.Minute)})
	_, exported := e.do(t, "GET", "/metrics", "", nil)

	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	alerts, err := os.ReadFile("../../deploy/prometheus/stepgate-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(alerts, &rules); err != nil || len(rules.Groups) == 0 {
		t.Fatalf("alert rules: %v", err)
	}
	dashboard, err := os.ReadFile("../../deploy/grafana/stepgate-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]string{}
	for _, m := range metricName.FindAllString(string(dashboard), -1) {
		used[m] = "the dashboard"
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			for _, m := range metricName.FindAllString(r.Expr, -1) {
				used[m] = "alert " + r.Alert
			}
		}
	}
	if len(used) < 10 {
		t.Fatalf("found only %d metric names in the dashboard and alerts", len(used))
	}
	for m, where := range used {
		base := m
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			base = strings.TrimSuffix(base, suffix)
		}
		if !strings.Contains(string(exported), "\n"+base) && !strings.Contains(string(exported), "# TYPE "+base+" ") {
			t.Errorf("%s uses %s, which the server does not export", where, m)
		}
	}
}
