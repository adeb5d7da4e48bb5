package e2e

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	_ "modernc.org/sqlite"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/grant"
	"github.com/stepgate/stepgate/internal/keys"
)

// TestRestartWhilePendingLosesNothing: a pending check survives a server
// restart, and asking again with the same inputs resumes it.
func TestRestartWhilePendingLosesNothing(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite://" + filepath.Join(dir, "stepgate.db")
	s := startServer(t, dir, db)
	tok := s.token("billing-ci")
	plan := repo(t, "examples/billing-rg-prod.plan.json")

	r := run(t, dir, pipelineEnv(s, tok), "check", "--plan", plan, "--workspace", "billing", "--wait", "1s")
	if r.code != 3 {
		t.Fatalf("check with a short wait: exit %d, want 3 (still pending)\n%s%s", r.code, r.stdout, r.stderr)
	}
	first := checkID.FindString(r.stdout + r.stderr)
	if first == "" {
		t.Fatalf("no check id in the output:\n%s%s", r.stdout, r.stderr)
	}
	s.stop()

	s = startServer(t, dir, db)
	r = run(t, dir, pipelineEnv(s, tok), "check", "--plan", plan, "--workspace", "billing", "--wait", "1s")
	if got := checkID.FindString(r.stdout + r.stderr); r.code != 3 || got != first {
		t.Fatalf("after a restart: exit %d, check %q; want 3 and the same check %s\n%s%s", r.code, got, first, r.stdout, r.stderr)
	}
	svc, st := s.domain()
	approvers(t, st, "carol")
	if _, err := svc.Record(context.Background(), first, &gate.Proof{Subject: "carol", Groups: []string{"approvers"}, Approved: true, AMR: []string{"otp"}, AAL: 2, AuthTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	r = run(t, dir, pipelineEnv(s, tok), "check", "--plan", plan, "--workspace", "billing", "--wait", "10s", "--grant-out", "g.jws")
	if r.code != 0 || !fileExists(filepath.Join(dir, "g.jws")) {
		t.Fatalf("after approval: exit %d, want 0 with the grant\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestExpiredGrantIsRefused: a grant past its exp does not run anything.
func TestExpiredGrantIsRefused(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite://" + filepath.Join(dir, "stepgate.db")
	s := startServer(t, dir, db)
	env := pipelineEnv(s, s.token("billing-ci"))
	plan := repo(t, "examples/dev-tag-change.plan.json")
	r := run(t, dir, env, "check", "--plan", plan, "--workspace", "billing-dev", "--grant-out", "g.jws")
	if r.code != 0 {
		t.Fatalf("check: exit %d\n%s", r.code, r.stderr)
	}
	// Re-sign the same grant with the server's own key, an hour in the past.
	raw, err := os.ReadFile(filepath.Join(dir, "g.jws"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	master, err := keys.LoadMaster(app.DevMasterKeyPath(db))
	if err != nil {
		t.Fatal(err)
	}
	ring := keys.NewRing(master, time.Now)
	ks, err := ring.JWKS(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := grant.Verify(context.Background(), strings.TrimSpace(string(raw)), grant.StaticKeys(ks.Keys), grant.Expect{Issuer: s.url, Audience: "stepgate", Now: time.Now(), Leeway: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	claims.IssuedAt, claims.NotBefore, claims.Expiry = jwt.NewNumericDate(past), jwt.NewNumericDate(past), jwt.NewNumericDate(past.Add(15*time.Minute))
	kid, key, err := ring.Signer(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := grant.Sign(kid, key, claims)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old.jws"), []byte(expired), 0o600); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "marker")
	r = run(t, dir, env, "apply", "--grant", "old.jws", "--plan", plan, "--workspace", "billing-dev", "--", "touch", marker)
	if r.code != 5 || fileExists(marker) || !strings.Contains(strings.ToLower(r.stderr+r.stdout), "expired") {
		t.Errorf("expired grant: exit %d, ran %v\n%s%s", r.code, fileExists(marker), r.stdout, r.stderr)
	}
}

// TestEditedAuditRowIsFound: `audit verify` names the first edited event.
func TestEditedAuditRowIsFound(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stepgate.db")
	s := startServer(t, dir, "sqlite://"+path)
	env := pipelineEnv(s, s.token("billing-ci"))
	for _, p := range []string{"examples/dev-tag-change.plan.json", "examples/billing-rg-prod.plan.json"} {
		run(t, dir, env, "check", "--plan", repo(t, p), "--workspace", "billing-dev", "--wait", "1s")
	}
	s.stop()
	if r := run(t, dir, nil, "audit", "verify", "--database", "sqlite://"+path); r.code != 0 {
		t.Fatalf("audit verify before editing: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec(`UPDATE ` + auditTable + ` SET actor = 'mallory' WHERE seq = 3`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("edited %d rows, want 1", n)
	}
	db.Close()
	r := run(t, dir, nil, "audit", "verify", "--database", "sqlite://"+path)
	if r.code != 6 || !strings.Contains(r.stderr, "sequence 3") {
		t.Errorf("audit verify after editing event 3: exit %d, want 6 naming sequence 3\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// auditTable is where both backends keep the audit log.
const auditTable = "audit_events"
