package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/keys"
)

// TestSecretsEndToEnd is the secrets side through the real binary and a
// real browser: an admin puts a secret; `stepgate exec --secret` waits on
// a secret.read check; the approver reads on the review page which secret
// it releases and why, and approves with a passkey (aal 3); the command
// sees the value in its environment, and nothing else does: not the
// database file, the server's log, the audit export nor any command's
// output. A grant exchanged a second time is refused (exit 5) and audited;
// a token of another workspace cannot even create the check.
func TestSecretsEndToEnd(t *testing.T) {
	b := startBrowser(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "stepgate.db")
	s := startWebServer(t, dir, "sqlite://"+dbPath)
	admin := b.newPerson("admin", s)
	enrollPasskey(t, admin, s.enrollLink, "admin", "Admin laptop", "")

	raw := make([]byte, 16)
	rand.Read(raw)
	value := "pw-" + hex.EncodeToString(raw)
	sum := sha256.Sum256([]byte(value))
	valueHash := hex.EncodeToString(sum[:])
	const child = `printf %s "$DB_PASSWORD" | sha256sum; test -z "$STEPGATE_TOKEN" && echo token-not-passed`

	var outputs []string // every command's output, searched for the value at the end
	keep := func(r result) result {
		outputs = append(outputs, r.stdout, r.stderr)
		return r
	}
	admin_ := []string{"--database", s.database, "--master-key-file", app.DevMasterKeyPath(s.database)}

	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	var env, payments []string

	step("admin_puts_a_secret", func(t *testing.T) {
		r := keep(runStdin(t, dir, nil, value+"\n", append([]string{"secrets", "put", "billing/db", "--workspace", "billing-*", "--description", "billing database"}, admin_...)...))
		if r.code != 0 || !strings.Contains(r.stderr, "secret billing/db version 1 written") {
			t.Fatalf("secrets put: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = keep(run(t, dir, nil, append([]string{"secrets", "list", "--output", "json"}, admin_...)...))
		var rows []map[string]any
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rows) != nil || len(rows) != 1 || rows[0]["name"] != "billing/db" || rows[0]["workspace"] != "billing-*" || rows[0]["version"] != 1.0 {
			t.Fatalf("secrets list: exit %d\n%s%s; want billing/db, billing-*, version 1", r.code, r.stdout, r.stderr)
		}
		env = pipelineEnv(s.server, s.token("billing-ci", "billing-*"))
		payments = pipelineEnv(s.server, s.token("payments-ci", "payments-*"))
	})

	step("token_of_another_workspace_cannot_ask", func(t *testing.T) {
		r := keep(run(t, dir, payments, "exec", "--secret", "DB_PASSWORD=billing/db", "--workspace", "billing-dev", "--wait", "0s", "--", "sh", "-c", child))
		if r.code == 0 || !strings.Contains(r.stderr, `may not ask for workspace "billing-dev"`) || checkID.MatchString(r.stdout+r.stderr) {
			t.Fatalf("exec with a payments token for billing-dev: exit %d, want a refusal and no check\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = keep(run(t, dir, payments, "secrets", "get", "billing/db", "--workspace", "payments-dev", "--wait", "0s"))
		if r.code != 2 || !strings.Contains(r.stderr, `no secret billing/db for workspace "payments-dev"`) {
			t.Fatalf("secrets get of a billing secret for payments-dev: exit %d, want 2 no secret\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	approveFor := func(t *testing.T, id, envName string) {
		t.Helper()
		admin.open(t, s.url+"/checks/"+id, `button[data-passkey="approve"]`)
		txt := admin.text(t)
		for _, want := range []string{"Secrets it releases", "billing/db", envName, "Releases 1 secret to the pipeline: billing/db.", "level 3"} {
			if !strings.Contains(txt, want) {
				admin.fail(t, "the review page does not say %q", want)
			}
		}
		admin.do(t, "clicking Approve with a passkey", 10*time.Second, chromedp.Click(chromedp.CSS(`button[data-passkey="approve"]`), chromedp.NodeVisible))
		admin.at(t, "approving with a passkey", "/checks/"+id+"?done=approved")
	}
	approve := func(t *testing.T, id string) { t.Helper(); approveFor(t, id, "DB_PASSWORD") }

	step("exec_waits_then_runs_with_the_secret", func(t *testing.T) {
		bg := startStepgate(t, dir, env, "exec", "--secret", "DB_PASSWORD=billing/db", "--workspace", "billing-dev", "--wait", "90s", "--", "sh", "-c", child)
		t.Cleanup(bg.stop)
		id := bg.id(t)
		// It waits: nothing runs before the approval.
		if strings.Contains(bg.output(), valueHash) {
			t.Fatalf("the command ran before the approval:\n%s", bg.output())
		}
		reviewing := time.Now()
		approve(t, id)
		code := bg.wait(t, 30*time.Second)
		t.Logf("the command had run and exited %.2f s after the review page was opened (approval, release and the command included)", time.Since(reviewing).Seconds())
		out := bg.output()
		outputs = append(outputs, out)
		if code != 0 || !strings.Contains(out, valueHash) || !strings.Contains(out, "token-not-passed") {
			t.Fatalf("exec: exit %d; want 0, the command seeing the value (sha256 %s) and not the token\n%s", code, valueHash, out)
		}
		if !strings.Contains(out, "Released:   billing/db (version 1)") {
			t.Errorf("exec does not say what it released:\n%s", out)
		}
	})

	step("exit_code_passes_through", func(t *testing.T) {
		bg := startStepgate(t, dir, env, "exec", "--secret", "DB_PASSWORD=billing/db", "--workspace", "billing-dev", "--wait", "90s", "--", "sh", "-c", "exit 7")
		t.Cleanup(bg.stop)
		approve(t, bg.id(t))
		if code := bg.wait(t, 30*time.Second); code != 7 {
			t.Fatalf("exec of a command exiting 7: exit %d\n%s", code, bg.output())
		}
		outputs = append(outputs, bg.output())
	})

	step("second_exchange_refused", func(t *testing.T) {
		bg := startCheck(t, dir, env, "--kind", "secret.read", "--secret", "DB_PASSWORD=billing/db", "--workspace", "billing-dev", "--wait", "90s", "--grant-out", "secret.grant")
		t.Cleanup(bg.stop)
		approve(t, bg.id(t))
		if code := bg.wait(t, 30*time.Second); code != 0 {
			t.Fatalf("check: exit %d\n%s", code, bg.output())
		}
		outputs = append(outputs, bg.output())
		r := keep(run(t, dir, env, "apply", "--grant", "secret.grant", "--workspace", "billing-dev", "--", "sh", "-c", child))
		if r.code != 0 || !strings.Contains(r.stdout, valueHash) {
			t.Fatalf("apply with the secret.read grant: exit %d; want 0 and the command seeing the value\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = keep(run(t, dir, env, "apply", "--grant", "secret.grant", "--workspace", "billing-dev", "--", "sh", "-c", child))
		if r.code != 5 || strings.Contains(r.stdout, valueHash) || !strings.Contains(r.stderr, "grant already used") {
			t.Fatalf("the same grant again: exit %d; want 5, grant already used, nothing run\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	step("apply_with_a_secret", func(t *testing.T) {
		plan := repo(t, "examples/dev-tag-change.plan.json")
		bg := startCheck(t, dir, env, "--plan", plan, "--workspace", "billing-dev", "--secret", "TF_VAR_db_password=billing/db", "--wait", "90s", "--grant-out", "apply.grant")
		t.Cleanup(bg.stop)
		approveFor(t, bg.id(t), "TF_VAR_db_password")
		if code := bg.wait(t, 30*time.Second); code != 0 {
			t.Fatalf("check --secret: exit %d\n%s", code, bg.output())
		}
		outputs = append(outputs, bg.output())
		if !strings.Contains(bg.output(), "billing/db → $TF_VAR_db_password") {
			t.Errorf("check does not say which secret the apply reads:\n%s", bg.output())
		}
		r := keep(run(t, dir, env, "apply", "--grant", "apply.grant", "--plan", plan, "--workspace", "billing-dev", "--",
			"sh", "-c", `printf %s "$TF_VAR_db_password" | sha256sum`))
		if r.code != 0 || !strings.Contains(r.stdout, valueHash) {
			t.Fatalf("apply: exit %d; want 0 and terraform seeing the secret\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	// The master key is rotated without losing a secret: the server is
	// restarted with the new key and the old one as previous, the data
	// keys are re-sealed, and a release after it opens them.
	oldLog := s.log
	step("master_key_rotation", func(t *testing.T) {
		// The same address: passkey approvals are bound to the origin,
		// which audit verify checks.
		listen := "127.0.0.1:" + s.url[strings.LastIndex(s.url, ":")+1:]
		oldKey := app.DevMasterKeyPath(s.database)
		newKey := filepath.Join(dir, "new.master.key")
		if err := keys.GenerateMasterFile(newKey); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "stepgate.yaml")
		yaml := fmt.Sprintf("server:\n  master_key_file: %s\n  previous_master_key_files: [%s]\n", newKey, oldKey)
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		s.stop()
		s = startWebServerOn(t, dir, s.database, listen, "--config", cfg)
		env = pipelineEnv(s.server, strings.TrimPrefix(env[1], "STEPGATE_TOKEN="))
		r := keep(run(t, dir, nil, "secrets", "rotate-master", "--config", cfg, "--database", s.database))
		if r.code != 0 || !strings.Contains(r.stderr, "re-sealed 1 secret data keys") || !strings.Contains(r.stderr, "1 grant-signing keys") {
			t.Fatalf("secrets rotate-master: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = keep(run(t, dir, nil, "secrets", "list", "--output", "json", "--database", s.database))
		newMaster, err := keys.LoadMaster(newKey)
		if err != nil {
			t.Fatal(err)
		}
		if r.code != 0 || !strings.Contains(r.stdout, `"key_id": "`+newMaster.ID()+`"`) {
			t.Fatalf("secrets list after the rotation: exit %d, want billing/db under %s\n%s%s", r.code, newMaster.ID(), r.stdout, r.stderr)
		}
		// Only the new key from now on.
		yaml = fmt.Sprintf("server:\n  master_key_file: %s\n", newKey)
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		prev := s.log
		s.stop()
		s = startWebServerOn(t, dir, s.database, listen, "--config", cfg)
		s.log.Write([]byte(prev.String()))
		env = pipelineEnv(s.server, strings.TrimPrefix(env[1], "STEPGATE_TOKEN="))
		bg := startStepgate(t, dir, env, "exec", "--secret", "DB_PASSWORD=billing/db", "--workspace", "billing-dev", "--wait", "90s", "--", "sh", "-c", child)
		t.Cleanup(bg.stop)
		approve(t, bg.id(t))
		code := bg.wait(t, 30*time.Second)
		outputs = append(outputs, bg.output())
		if code != 0 || !strings.Contains(bg.output(), valueHash) {
			t.Fatalf("exec after the rotation, with the new key alone: exit %d\n%s", code, bg.output())
		}
	})

	step("value_is_nowhere_else", func(t *testing.T) {
		r := keep(run(t, dir, nil, "audit", "export", "--database", s.database))
		if r.code != 0 {
			t.Fatalf("audit export: exit %d\n%s", r.code, r.stderr)
		}
		counts := map[string]int{}
		var refusals []string
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var e struct {
				Type, Actor, Subject string
				Data                 json.RawMessage
			}
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("audit line %q: %v", line, err)
			}
			counts[e.Type]++
			if e.Type == "secret.refused" {
				refusals = append(refusals, e.Actor+": "+string(e.Data))
			}
		}
		if counts["secret.written"] != 1 || counts["secret.released"] != 5 || counts["secret.resealed"] != 2 {
			t.Errorf("audit: %d secret.written, %d secret.released, %d secret.resealed; want 1, 5 and 2", counts["secret.written"], counts["secret.released"], counts["secret.resealed"])
		}
		joined := strings.Join(refusals, "\n")
		for _, want := range []string{`payments-ci: {"action":"create_check"`, "grant already used"} {
			if !strings.Contains(joined, want) {
				t.Errorf("the refusals audited:\n%s\nwant one with %q", joined, want)
			}
		}
		// After the rotation the server's keys are sealed under the new
		// master key: audit verify is given it (the old one next to the
		// database opens none of them).
		if r := keep(run(t, dir, nil, "audit", "verify", "--database", s.database, "--public-url", s.url,
			"--master-key-file", filepath.Join(dir, "new.master.key"))); r.code != 0 {
			t.Errorf("audit verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		places := map[string]string{"the server's log": s.log.String(), "the first server's log": oldLog.String()}
		for _, f := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
			if b, err := os.ReadFile(f); err == nil {
				places[filepath.Base(f)] = string(b)
			}
		}
		if !strings.Contains(places["stepgate.db"]+places["stepgate.db-wal"], "billing/db") {
			t.Errorf("the database files read do not hold the secret's name: not the server's database?")
		}
		for i, o := range outputs {
			places[fmt.Sprintf("command output %d", i)] = o
		}
		for where, text := range places {
			if strings.Contains(text, value) || strings.Contains(text, hex.EncodeToString([]byte(value))) {
				t.Errorf("%s holds the secret's value", where)
			}
		}
		if !strings.Contains(places["the server's log"], "secrets released") {
			t.Errorf("the server's log does not record the releases (without values):\n%s", tail(s.log.String(), 2000))
		}
	})
}
