package e2e

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/testenv"
)

// postgresDSN returns a DSN on a fresh schema, dropped at the end.
func postgresDSN(t *testing.T) string {
	t.Helper()
	return testenv.PostgresSchema(t, "e2e")
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestTwoServersOnOnePostgres: servers sharing a database work as one: a
// pipeline waiting on one is woken by an approval made elsewhere, and its
// grant is used through the other.
func TestTwoServersOnOnePostgres(t *testing.T) {
	dsn := postgresDSN(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "master.key")
	if err := keys.GenerateMasterFile(keyFile); err != nil {
		t.Fatal(err)
	}
	addrA, addrB := freePort(t), freePort(t)
	_, portA, _ := net.SplitHostPort(addrA)
	_, portB, _ := net.SplitHostPort(addrB)
	public := "http://localhost:" + portA // as behind a load balancer: one public URL
	a := startServer(t, dir, dsn, "--listen", addrA, "--public-url", public, "--master-key-file", keyFile)
	b := startServer(t, dir, dsn, "--listen", addrB, "--public-url", public, "--master-key-file", keyFile)
	a.url, b.url = "http://localhost:"+portA, "http://localhost:"+portB
	tok := a.token("billing-ci")
	plan := repo(t, "examples/prod-iam.plan.json")

	check := startCheck(t, dir, pipelineEnv(a, tok), "--plan", plan, "--workspace", "billing-prod", "--wait", "60s", "--grant-out", "g.jws")
	defer check.stop()
	id := check.id(t)
	a.awaitWaiting(1) // the pipeline's long-poll has reached server A

	// The approval is made through its own connection to the database, as
	// a third replica would: server A learns of it by LISTEN/NOTIFY.
	b.dir = dir
	svc, st := b.domainWithKey(keyFile)
	approvers(t, st, "alice")
	start := time.Now()
	if _, err := svc.Record(context.Background(), id, &gate.Proof{Subject: "alice", Groups: []string{"approvers"}, Approved: true, AMR: []string{"hwk", "user"}, AAL: 3, AuthTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if code := check.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("waiting check: exit %d\n%s", code, check.output())
	}
	woke := time.Since(start)
	t.Logf("woken %v after the approval, across servers", woke)
	if woke > 1500*time.Millisecond {
		t.Errorf("the waiting pipeline took %v to learn of the approval: LISTEN/NOTIFY did not wake it (the 2 s re-read did)", woke)
	}

	// The grant is used through the other server.
	marker := filepath.Join(dir, "marker")
	r := run(t, dir, pipelineEnv(b, tok), "apply", "--grant", "g.jws", "--issuer", public, "--plan", plan, "--workspace", "billing-prod", "--", "touch", marker)
	if r.code != 0 || !fileExists(marker) {
		t.Fatalf("apply through server B: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// And refused as a replay through server A.
	os.Remove(marker)
	r = run(t, dir, pipelineEnv(a, tok), "apply", "--grant", "g.jws", "--issuer", public, "--plan", plan, "--workspace", "billing-prod", "--", "touch", marker)
	if r.code != 5 || fileExists(marker) {
		t.Errorf("replay through server A: exit %d\n%s", r.code, r.stderr)
	}
	r = run(t, dir, nil, "audit", "verify", "--database", dsn, "--master-key-file", keyFile)
	if r.code != 0 || !strings.Contains(r.stdout, "intact") {
		t.Errorf("audit verify after two servers: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
