package httpapi

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/plan/planfile"
)

// savedPlans are saved plans and their JSON written by the real Terraform
// (internal/plan/planfile/testdata/generate.sh).
const savedPlans = "../plan/planfile/testdata"

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(savedPlans, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// multipartCheck builds the body `stepgate check --plan-file` sends: the
// parts named in order, each with its bytes.
func multipartCheck(t *testing.T, parts ...[2]any) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="`+p[0].(string)+`"; filename="`+p[0].(string)+`"`)
		h.Set("Content-Type", "application/octet-stream")
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p[1].([]byte))
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), buf.Bytes()
}

func post(t *testing.T, s *stack, token, query, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.srv.URL+"/v1/checks?"+query, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp, out.Bytes()
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func auditEvents(t *testing.T, s *stack) []*audit.Event {
	t.Helper()
	evs, err := s.st.ListAudit(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestSavedPlanAttack is the attack of security issue 10: a pipeline sends
// a harmless plan JSON with an evil saved plan, hoping for a grant that
// `stepgate apply --plan-file evil.tfplan` accepts. The server must refuse
// it (400), audit the refusal, and record no check.
func TestSavedPlanAttack(t *testing.T) {
	harmless, evil := fixture(t, "create_x_a.json"), fixture(t, "create_x_b.tfplan")
	good := fixture(t, "create_x_a.tfplan")
	for _, tt := range []struct {
		name     string
		binding  string
		query    string
		parts    [][2]any
		jsonBody bool // the plan JSON alone as the body, as older clients send it
		want     string
	}{
		{name: "fail/evil-saved-plan", query: "", parts: [][2]any{{"plan", harmless}, {"plan_file", evil}},
			want: "terraform_data.x: after.input differs"},
		{name: "fail/evil-saved-plan-with-its-own-digest", query: "&plan_file_sha256=" + sha(evil), parts: [][2]any{{"plan", harmless}, {"plan_file", evil}},
			want: "terraform_data.x: after.input differs"},
		{name: "fail/digest-of-another-file", query: "&plan_file_sha256=" + sha(evil), parts: [][2]any{{"plan", harmless}, {"plan_file", good}},
			want: "is not the sha256 of the saved plan sent"},
		{name: "fail/digest-only", query: "&plan_file_sha256=" + sha(evil), jsonBody: true,
			want: "does not send it"},
		{name: "fail/extra-resource", parts: [][2]any{{"plan", harmless}, {"plan_file", fixture(t, "create_x_a_y.tfplan")}},
			want: "terraform_data.y: create in the saved plan, not in the JSON"},
		{name: "fail/other-action", parts: [][2]any{{"plan", fixture(t, "update_x.json")}, {"plan_file", fixture(t, "replace_x.tfplan")}},
			want: "terraform_data.x: action update in the JSON, replace in the saved plan"},
		{name: "fail/not-a-saved-plan", parts: [][2]any{{"plan", harmless}, {"plan_file", harmless}},
			want: "not a zip archive"},
		// json-only accepts what cannot be verified, never a mismatch.
		{name: "fail/json-only-still-refuses-a-mismatch", binding: planfile.BindingJSONOnly, parts: [][2]any{{"plan", harmless}, {"plan_file", evil}},
			want: "terraform_data.x: after.input differs"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, stackOpts{cfg: gate.Config{SavedPlanBinding: tt.binding}})
			tok := s.token(t)
			var resp *http.Response
			var b []byte
			if tt.jsonBody {
				resp, b = post(t, s, tok, "workspace=billing-dev"+tt.query, "application/json", harmless)
			} else {
				ct, body := multipartCheck(t, tt.parts...)
				resp, b = post(t, s, tok, "workspace=billing-dev"+tt.query, ct, body)
			}
			if resp.StatusCode != http.StatusBadRequest || errCode(t, b) != api.CodeSavedPlan {
				t.Fatalf("POST /v1/checks = %d %s, want 400 %s", resp.StatusCode, b, api.CodeSavedPlan)
			}
			if !strings.Contains(string(b), tt.want) {
				t.Errorf("answer %s does not say %q", b, tt.want)
			}
			var refused *audit.Event
			for _, e := range auditEvents(t, s) {
				switch e.Type {
				case audit.CheckRefused:
					refused = e
				case audit.CheckCreated, audit.GrantIssued, audit.CheckPending:
					t.Errorf("a refused check was recorded: %s %s", e.Type, e.Data)
				}
			}
			if refused == nil {
				t.Fatal("no check.refused audit event")
			}
			var data map[string]any
			if err := json.Unmarshal(refused.Data, &data); err != nil {
				t.Fatal(err)
			}
			if refused.Actor != "ci" || refused.Subject != "workspace:billing-dev" || data["token"] != "ci" || data["workspace"] != "billing-dev" ||
				data["plan_sha256"] != sha(harmlessOr(tt.parts, harmless)) || !strings.Contains(data["reason"].(string), tt.want) {
				t.Errorf("check.refused = actor %q subject %q %s", refused.Actor, refused.Subject, refused.Data)
			}
			if !tt.jsonBody && data["plan_file_sha256"] != sha(tt.parts[1][1].([]byte)) {
				t.Errorf("check.refused names saved plan %v, want the digest of the bytes sent %s", data["plan_file_sha256"], sha(tt.parts[1][1].([]byte)))
			}
		})
	}
}

func harmlessOr(parts [][2]any, harmless []byte) []byte {
	if len(parts) > 0 {
		return parts[0][1].([]byte)
	}
	return harmless
}

// TestSavedPlanBound: the matching pair is accepted and bound to the
// digest the server computed over the saved plan it received.
func TestSavedPlanBound(t *testing.T) {
	for _, tt := range []struct {
		name, json, saved string
	}{
		{"ok/terraform-create", "create_x_a.json", "create_x_a.tfplan"},
		{"ok/terraform-unknown-and-sensitive", "unknown_sensitive.json", "unknown_sensitive.tfplan"},
		{"ok/terraform-replace", "replace_x.json", "replace_x.tfplan"},
		{"ok/opentofu", "opentofu-1.10.6/create.json", "opentofu-1.10.6/create.tfplan"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, stackOpts{})
			saved := fixture(t, tt.saved)
			ct, body := multipartCheck(t, [2]any{"plan", fixture(t, tt.json)}, [2]any{"plan_file", saved})
			resp, b := post(t, s, s.token(t), "workspace=billing-dev&plan_file_sha256="+sha(saved), ct, body)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("POST /v1/checks = %d %s, want 201", resp.StatusCode, b)
			}
			var c api.Check
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			if c.PlanFileSHA256 != sha(saved) || c.PlanSHA256 != sha(fixture(t, tt.json)) {
				t.Errorf("check binds plan %s and saved plan %s, want %s and %s", c.PlanSHA256, c.PlanFileSHA256, sha(fixture(t, tt.json)), sha(saved))
			}
			for _, f := range c.Assessment.Findings {
				if f.Rule == gate.RuleUnverified {
					t.Errorf("a verified saved plan has the finding %s", f.Rule)
				}
			}
		})
	}
}

// TestSavedPlanJSONOnly: with plan.saved_plan_binding json-only, a check
// whose saved plan is named but not sent, or is of an unknown format, is
// accepted with the finding plan.unverified; in verify mode it is refused.
func TestSavedPlanJSONOnly(t *testing.T) {
	harmless, saved := fixture(t, "create_x_a.json"), fixture(t, "create_x_a.tfplan")
	s := newStack(t, stackOpts{cfg: gate.Config{SavedPlanBinding: planfile.BindingJSONOnly}})
	resp, b := post(t, s, s.token(t), "workspace=billing-dev&plan_file_sha256="+sha(saved), "application/json", harmless)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/checks = %d %s, want 201", resp.StatusCode, b)
	}
	var c api.Check
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range c.Assessment.Findings {
		found = found || (f.Rule == gate.RuleUnverified && strings.Contains(f.Reason, "not verified"))
	}
	if !found || c.PlanFileSHA256 != sha(saved) {
		t.Errorf("check = %s, want the finding %s and the saved plan's digest", b, gate.RuleUnverified)
	}
}

// TestSavedPlanUnknownFormat: a saved plan of a format this stepgate does
// not know fails closed, naming the tool version; json-only accepts it with
// the finding plan.unverified and the digest of the bytes received.
func TestSavedPlanUnknownFormat(t *testing.T) {
	harmless := fixture(t, "create_x_a.json")
	v4 := version4(t, fixture(t, "create_x_a.tfplan"))
	for _, tt := range []struct {
		name, binding string
		status        int
		want          string
	}{
		{"fail/verify", planfile.BindingVerify, 400, `tfplan format version 4, written by version \"1.11.4\"`},
		{"ok/json-only", planfile.BindingJSONOnly, 201, `"rule": "plan.unverified"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, stackOpts{cfg: gate.Config{SavedPlanBinding: tt.binding}})
			ct, body := multipartCheck(t, [2]any{"plan", harmless}, [2]any{"plan_file", v4})
			resp, b := post(t, s, s.token(t), "workspace=billing-dev", ct, body)
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.want) {
				t.Fatalf("POST /v1/checks = %d %s, want %d with %s", resp.StatusCode, b, tt.status, tt.want)
			}
			if tt.status == 201 && !strings.Contains(string(b), `"plan_file_sha256": "`+sha(v4)+`"`) {
				t.Errorf("check %s is not bound to the digest of the saved plan sent, %s", b, sha(v4))
			}
		})
	}
}

// version4 rewrites a saved plan with its tfplan format version set to 4.
func version4(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == "tfplan" {
			body[1] = 4 // 08 03: field 1 (version) = 3
		}
		w, _ := zw.Create(f.Name)
		w.Write(body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestSavedPlanParts: the multipart body is the plan, then the saved plan.
func TestSavedPlanParts(t *testing.T) {
	s := newStack(t, stackOpts{})
	tok := s.token(t)
	harmless, saved := fixture(t, "create_x_a.json"), fixture(t, "create_x_a.tfplan")
	for _, tt := range []struct {
		name   string
		parts  [][2]any
		status int
	}{
		{"fail/wrong-order", [][2]any{{"plan_file", saved}, {"plan", harmless}}, 400},
		{"fail/unknown-part", [][2]any{{"plan", harmless}, {"state", saved}}, 400},
		{"fail/no-parts", nil, 400},
		{"ok/plan-only", [][2]any{{"plan", harmless}}, 201},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ct, body := multipartCheck(t, tt.parts...)
			resp, b := post(t, s, tok, "workspace=billing-dev", ct, body)
			if resp.StatusCode != tt.status {
				t.Errorf("POST /v1/checks = %d %s, want %d", resp.StatusCode, b, tt.status)
			}
		})
	}
}
