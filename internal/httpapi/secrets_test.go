package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/grant"
	"github.com/stepgate/stepgate/internal/secret"
	"github.com/stepgate/stepgate/internal/store"
)

const dbPassword = "s3cr3t-db-password-4f9a"

// secretStack is a stack with a secret store holding billing/db (for
// billing-*) and payments/db (for payments-*), and tokens for each.
type secretStack struct {
	*stack
	logs              *bytes.Buffer
	billing, billing2 string // two tokens of billing-*
	payments          string
}

func newSecretStack(t *testing.T, cfg ...gate.Config) *secretStack {
	t.Helper()
	logs := &bytes.Buffer{}
	o := stackOpts{log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if len(cfg) > 0 {
		o.cfg = cfg[0]
	}
	s := newStack(t, o)
	sec := secret.New(s.st, s.master, nil)
	s.svc.SetSecrets(sec)
	ctx := context.Background()
	if _, err := sec.Put(ctx, "billing/db", "billing-*", "", []byte(dbPassword), "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := sec.Put(ctx, "payments/db", "payments-*", "", []byte("payments-value"), "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := sec.Put(ctx, "billing/api", "billing-*", "", []byte("billing-api-key"), "test"); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, ws ...string) string {
		tok, _, err := gate.CreateToken(ctx, s.st, gate.TokenSpec{Name: name, Workspaces: ws}, "test", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return &secretStack{stack: s, logs: logs, billing: mk("billing-ci", "billing-*"), billing2: mk("billing-other", "billing-*"), payments: mk("payments-ci", "payments-*")}
}

func (s *secretStack) do(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd *bytes.Reader
	if b, ok := body.([]byte); ok {
		rd = bytes.NewReader(b)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	resp, b := (&env{srv: s.srv}).do(t, method, path, token, rd)
	return resp.StatusCode, b
}

func (s *secretStack) create(t *testing.T, token, kind, ws string, secrets ...string) (int, *api.Check, []byte) {
	t.Helper()
	q := url.Values{api.ParamKind: {kind}, api.ParamWorkspace: {ws}, api.ParamSecret: secrets}
	code, b := s.do(t, http.MethodPost, api.PathChecks+"?"+q.Encode(), token, nil)
	var c api.Check
	_ = json.Unmarshal(b, &c)
	return code, &c, b
}

func (s *secretStack) approve(t *testing.T, id string) *api.Check {
	t.Helper()
	// Only approvals of people with an account, enabled, count.
	if _, err := s.st.GetUserByName(context.Background(), "alice"); err != nil {
		if err := s.st.CreateUser(context.Background(), &store.User{ID: "usr_alice", Name: "alice", Groups: []string{gate.DefaultApproverGroup}, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := s.svc.Record(context.Background(), id, &gate.Proof{
		Subject: "alice", Groups: []string{gate.DefaultApproverGroup}, Approved: true, AMR: []string{"hwk", "user"}, AAL: 3, AuthTime: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (s *secretStack) grantOf(t *testing.T, token, id string) string {
	t.Helper()
	code, b := s.do(t, http.MethodGet, api.PathChecks+"/"+id, token, nil)
	var c api.Check
	if err := json.Unmarshal(b, &c); err != nil || code != 200 || c.Grant == "" {
		t.Fatalf("GET check = %d %s, want its grant", code, b)
	}
	return c.Grant
}

func (s *secretStack) auditTypes(t *testing.T) (types []string, all string) {
	t.Helper()
	evs, err := s.st.ListAudit(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, e := range evs {
		types = append(types, e.Type)
		b, _ := json.Marshal(e)
		sb.Write(b)
	}
	return types, sb.String()
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// The grant of a secret.read check is exchanged once, by the pipeline that
// asked, for the values; a second exchange, another pipeline's exchange and
// a check from a token of another workspace are refused and audited, and
// the value is nowhere but in the one answer.
func TestReleaseOnce(t *testing.T) {
	s := newSecretStack(t)
	code, ch, b := s.create(t, s.billing, "secret.read", "billing-dev", "DB_PASSWORD=billing/db")
	if code != http.StatusCreated || ch.State != "pending" {
		t.Fatalf("POST /v1/checks = %d %s, want a pending check", code, b)
	}
	if len(ch.Secrets) != 1 || ch.Secrets[0] != (api.CheckSecret{Name: "billing/db", Env: "DB_PASSWORD"}) {
		t.Errorf("check secrets = %+v, want billing/db in DB_PASSWORD", ch.Secrets)
	}
	if ch.Assessment.Requirements == nil || ch.Assessment.Requirements.AAL != 3 {
		t.Errorf("requirements = %+v, want aal 3", ch.Assessment.Requirements)
	}
	// Nothing is released before approval.
	if code, b := s.do(t, http.MethodPost, api.PathRelease, s.billing, api.ReleaseRequest{Grant: "x.y.z"}); code != http.StatusUnauthorized {
		t.Fatalf("release of a made-up grant = %d %s, want 401", code, b)
	}
	s.approve(t, ch.ID)
	tok := s.grantOf(t, s.billing, ch.ID)
	claims, err := grant.Verify(context.Background(), tok, mustKeys(t, s.svc), grant.Expect{Issuer: s.svc.Issuer(), Audience: "stepgate", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(claims.Secrets, ",") != "billing/db" || claims.Kind != "secret.read" {
		t.Errorf("grant claims secrets %v kind %s, want [billing/db] secret.read", claims.Secrets, claims.Kind)
	}

	// Another pipeline of the same workspace holding the grant: refused,
	// and nothing is used up.
	if code, b := s.do(t, http.MethodPost, api.PathRelease, s.billing2, api.ReleaseRequest{Grant: tok}); code != http.StatusForbidden {
		t.Fatalf("release by another token = %d %s, want 403", code, b)
	}
	// The pipeline that asked: once.
	code, b = s.do(t, http.MethodPost, api.PathRelease, s.billing, api.ReleaseRequest{Grant: tok})
	if code != http.StatusOK {
		t.Fatalf("release = %d %s, want 200", code, b)
	}
	var rel api.ReleaseResponse
	if err := json.Unmarshal(b, &rel); err != nil {
		t.Fatal(err)
	}
	if len(rel.Secrets) != 1 || string(rel.Secrets[0].Value) != dbPassword || rel.Secrets[0].Env != "DB_PASSWORD" || rel.Secrets[0].Version != 1 {
		t.Fatalf("released %v, want billing/db version 1 in DB_PASSWORD", rel.Secrets)
	}
	// Twice: refused.
	if code, b := s.do(t, http.MethodPost, api.PathRelease, s.billing, api.ReleaseRequest{Grant: tok}); code != http.StatusConflict {
		t.Fatalf("second release = %d %s, want 409", code, b)
	}
	// A token of another workspace cannot even create the check.
	if code, _, b := s.create(t, s.payments, "secret.read", "billing-dev", "billing/db"); code != http.StatusForbidden {
		t.Fatalf("check by a payments token for billing-dev = %d %s, want 403", code, b)
	}
	// Nor can a billing token name a payments secret.
	code, _, b = s.create(t, s.billing, "secret.read", "billing-dev", "payments/db")
	if code != http.StatusBadRequest || !strings.Contains(string(b), `no secret payments/db for workspace \"billing-dev\"`) {
		t.Fatalf("check naming another workspace's secret = %d %s, want 400 no secret", code, b)
	}

	types, all := s.auditTypes(t)
	if n := count(types, audit.SecretReleased); n != 1 {
		t.Errorf("audit has %d %s, want 1", n, audit.SecretReleased)
	}
	if n := count(types, audit.SecretRefused); n != 5 {
		t.Errorf("audit has %d %s, want 5 (a made-up grant, another token, second release, another workspace, another workspace's secret): %v", n, audit.SecretRefused, types)
	}
	if !strings.Contains(all, `"secrets":[{"key_id":"`+s.master.ID()+`","name":"billing/db","version":1}]`) {
		t.Errorf("the release event does not name the version released: %s", all)
	}
	for what, text := range map[string]string{"audit log": all, "server log": s.logs.String()} {
		if strings.Contains(text, dbPassword) {
			t.Errorf("the %s holds the value", what)
		}
	}
	code, b = s.do(t, http.MethodGet, api.PathChecks+"/"+ch.ID, s.billing, nil)
	if code != 200 || strings.Contains(string(b), dbPassword) || !strings.Contains(string(b), `"state": "consumed"`) {
		t.Errorf("GET check after release = %d %s, want consumed, without the value", code, b)
	}
}

// An apply check may name secrets: one review covers both, and the grant
// releases them.
func TestReleaseOfAnApplyGrant(t *testing.T) {
	s := newSecretStack(t)
	q := url.Values{api.ParamKind: {"terraform.apply"}, api.ParamWorkspace: {"billing-dev"}, api.ParamSecret: {"TF_VAR_db_password=billing/db"}}
	code, b := s.do(t, http.MethodPost, api.PathChecks+"?"+q.Encode(), s.billing, mustRead(t, planBody(t, "dev-tag-change.plan.json")))
	var ch api.Check
	_ = json.Unmarshal(b, &ch)
	if code != http.StatusCreated || ch.State != "pending" {
		t.Fatalf("POST /v1/checks = %d %s, want pending: the apply reads a secret", code, b)
	}
	found := false
	for _, f := range ch.Assessment.Findings {
		found = found || (f.Rule == "secret.read" && strings.Contains(f.Reason, "billing/db"))
	}
	if !found {
		t.Errorf("findings %+v do not say the apply reads billing/db", ch.Assessment.Findings)
	}
	s.approve(t, ch.ID)
	tok := s.grantOf(t, s.billing, ch.ID)
	code, b = s.do(t, http.MethodPost, api.PathRelease, s.billing, api.ReleaseRequest{Grant: tok})
	if code != http.StatusOK || !strings.Contains(string(b), `"env": "TF_VAR_db_password"`) {
		t.Fatalf("release = %d %s, want the secret for TF_VAR_db_password", code, b)
	}
	// The grant is used up for a plain consume too.
	if code, b := s.do(t, http.MethodPost, api.PathConsume, s.billing, api.ConsumeRequest{Grant: tok}); code != http.StatusConflict {
		t.Fatalf("consume after release = %d %s, want 409", code, b)
	}
}

// A grant whose check names no secret releases nothing and is not used up.
func TestReleaseWithoutSecrets(t *testing.T) {
	s := newSecretStack(t)
	ch := &api.Check{}
	q := url.Values{api.ParamKind: {"terraform.apply"}, api.ParamWorkspace: {"billing-dev"}}
	code, b := s.do(t, http.MethodPost, api.PathChecks+"?"+q.Encode(), s.billing, mustRead(t, planBody(t, "dev-tag-change.plan.json")))
	_ = json.Unmarshal(b, ch)
	if ch.State != "allowed" && ch.State != "pending" {
		t.Fatalf("POST /v1/checks = %d %s", code, b)
	}
	if ch.State == "pending" {
		s.approve(t, ch.ID)
	}
	tok := s.grantOf(t, s.billing, ch.ID)
	if code, b := s.do(t, http.MethodPost, api.PathRelease, s.billing, api.ReleaseRequest{Grant: tok}); code != http.StatusBadRequest || !strings.Contains(string(b), "releases no secrets") {
		t.Fatalf("release = %d %s, want 400 releases no secrets", code, b)
	}
	if code, b := s.do(t, http.MethodPost, api.PathConsume, s.billing, api.ConsumeRequest{Grant: tok}); code != http.StatusOK {
		t.Fatalf("consume after a refused release = %d %s, want 200: the grant was not used", code, b)
	}
}

// A secret removed after the approval is not released, and the grant is
// not used up.
func TestReleaseOfARemovedSecret(t *testing.T) {
	s := newSecretStack(t)
	_, ch, _ := s.create(t, s.billing, "secret.read", "billing-dev", "billing/db")
	s.approve(t, ch.ID)
	tok := s.grantOf(t, s.billing, ch.ID)
	if _, err := secret.New(s.st, s.master, nil).Remove(context.Background(), "billing/db", "test"); err != nil {
		t.Fatal(err)
	}
	if code, b := s.do(t, http.MethodPost, api.PathRelease, s.billing, api.ReleaseRequest{Grant: tok}); code != http.StatusConflict || strings.Contains(string(b), dbPassword) {
		t.Fatalf("release of a removed secret = %d %s, want 409", code, b)
	}
}

func mustKeys(t *testing.T, svc *gate.Service) grant.StaticKeys {
	t.Helper()
	ks, err := svc.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func mustRead(t *testing.T, r interface{ Read([]byte) (int, error) }) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A secret kept elsewhere ("vault:billing/db") is named by the check and
// its grant, seen by the policy as external, and never released here: the
// exchange is refused and the grant stays unused.
func TestExternalSecretsAreNamedNotReleased(t *testing.T) {
	s := newSecretStack(t)
	code, ch, b := s.create(t, s.billing, "secret.read", "billing-dev", "vault:billing/db")
	if code != http.StatusCreated || ch.State != "pending" || len(ch.Secrets) != 1 || ch.Secrets[0].Name != "vault:billing/db" {
		t.Fatalf("POST /v1/checks = %d %s, want a pending check naming vault:billing/db", code, b)
	}
	s.approve(t, ch.ID)
	tok := s.grantOf(t, s.billing, ch.ID)
	if code, b := s.do(t, http.MethodPost, api.PathRelease, s.billing, api.ReleaseRequest{Grant: tok}); code != http.StatusBadRequest || !strings.Contains(string(b), "kept in stepgate") {
		t.Fatalf("release = %d %s, want 400: nothing kept in stepgate", code, b)
	}
	if code, b := s.do(t, http.MethodPost, api.PathConsume, s.billing, api.ConsumeRequest{Grant: tok}); code != http.StatusOK {
		t.Fatalf("consume = %d %s, want 200: the refused release used nothing", code, b)
	}
	for _, bad := range []string{"ENV=vault:billing/db", "Vault:x", "vault:", "vault:a b"} {
		if code, _, b := s.create(t, s.billing, "secret.read", "billing-dev", bad); code != http.StatusBadRequest {
			t.Errorf("secret %q: POST /v1/checks = %d %s, want 400", bad, code, b)
		}
	}
}
