package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestTypeCategories(t *testing.T) {
	patterns := ast.MustParseTerm(`{
		"identity": ["aws_iam_*", "google_project_iam_member", "kubernetes:rbac.authorization.k8s.io/*:Role*"],
		"secrets":  ["aws_secretsmanager_*", "aws_iam_access_key"],
		"network":  []
	}`)
	tc := newTypeClassifier()
	for _, tt := range []struct {
		name  string
		types string
		want  string
	}{
		{"exact and glob", `{"aws_iam_role", "google_project_iam_member", "aws_instance"}`, `{"aws_iam_role": {"identity"}, "google_project_iam_member": {"identity"}}`},
		{"two categories", `["aws_iam_access_key"]`, `{"aws_iam_access_key": {"identity", "secrets"}}`},
		{"a glob crosses dots, slashes and colons", `{"kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"}`, `{"kubernetes:rbac.authorization.k8s.io/v1:RoleBinding": {"identity"}}`},
		{"exact is exact", `{"google_project_iam_member_x", "aws_ia"}`, `{}`},
		{"nothing", `set()`, `{}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Twice: the second answer comes from the remembered types.
			for range 2 {
				got, err := tc.classify(patterns.Value, ast.MustParseTerm(tt.types).Value)
				if err != nil {
					t.Fatal(err)
				}
				if want := ast.MustParseTerm(tt.want); !got.Equal(want) {
					t.Fatalf("got %v, want %v", got, want)
				}
			}
		})
	}

	// Another pattern set (a test's `with` override) gets its own answer.
	other := ast.MustParseTerm(`{"identity": ["aws_instance"]}`)
	got, err := tc.classify(other.Value, ast.MustParseTerm(`{"aws_iam_role", "aws_instance"}`).Value)
	if err != nil {
		t.Fatal(err)
	}
	if want := ast.MustParseTerm(`{"aws_instance": {"identity"}}`); !got.Equal(want) {
		t.Fatalf("with other patterns: got %v, want %v", got, want)
	}
}

func TestTypeCategoriesBadArguments(t *testing.T) {
	tc := newTypeClassifier()
	for _, tt := range []struct{ patterns, types, want string }{
		{`["aws_*"]`, `{"a"}`, "patterns is an array"},
		{`{"identity": "aws_*"}`, `{"a"}`, `the patterns of "identity" are a string`},
		{`{"identity": [1]}`, `{"a"}`, `a pattern of "identity" is a number`},
		{`{"identity": ["aws_[*"]}`, `{"a"}`, `pattern "aws_[*"`},
		{`{"identity": ["aws_*"]}`, `{1}`, "a type is a number"},
		{`{"identity": ["aws_*"]}`, `"aws_iam_role"`, "types is a string"},
	} {
		_, err := tc.classify(ast.MustParseTerm(tt.patterns).Value, ast.MustParseTerm(tt.types).Value)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("classify(%s, %s): error %v, want one saying %q", tt.patterns, tt.types, err, tt.want)
		}
	}
}

// A type pattern that is not a valid glob is refused when the engine is
// made, naming the setting and the pattern, rather than failing every
// evaluation later.
func TestBadTypePatternRefused(t *testing.T) {
	for _, tt := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.SensitiveTypes["custom"] = []string{"acme_[*"} }, `policy.sensitive_types.custom: pattern "acme_[*" is not a valid glob`},
		{func(c *Config) { c.StatefulTypes = append(c.StatefulTypes, "acme_{db*") }, `policy.stateful_types: pattern "acme_{db*" is not a valid glob`},
	} {
		cfg := DefaultConfig()
		tt.edit(&cfg)
		_, err := New(t.Context(), cfg, nil)
		if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New: %v, want ErrPolicy saying %q", err, tt.want)
		}
	}
}

// Checks are evaluated concurrently: the caches are shared by every
// evaluation of an engine (run with -race).
func TestTypeCategoriesConcurrent(t *testing.T) {
	tc := newTypeClassifier()
	a := ast.MustParseTerm(`{"identity": ["aws_iam_*"]}`)
	b := ast.MustParseTerm(`{"stateful": ["aws_db_*", "aws_s3_bucket"]}`)
	types := ast.MustParseTerm(`{"aws_iam_role", "aws_db_instance", "aws_s3_bucket", "aws_instance"}`)
	wantA := ast.MustParseTerm(`{"aws_iam_role": {"identity"}}`)
	wantB := ast.MustParseTerm(`{"aws_db_instance": {"stateful"}, "aws_s3_bucket": {"stateful"}}`)
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			patterns, want := a, wantA
			if i%2 == 1 {
				patterns, want = b, wantB
			}
			for range 50 {
				got, err := tc.classify(patterns.Value, types.Value)
				if err == nil && !got.Equal(want) {
					err = fmt.Errorf("got %v, want %v", got, want)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
