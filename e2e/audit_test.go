package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/gate"
)

// TestAuditVerifyFindsTampering: a server writes signed checkpoints of
// its audit log (and a copy to its checkpoint file); once it is stopped,
// the SQLite file is attacked directly, as someone holding the database
// (not the master key) would, and `stepgate audit verify` names each
// attack with exit code 6; the untampered log verifies with exit code 0.
func TestAuditVerifyFindsTampering(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stepgate.db")
	sink := filepath.Join(dir, "checkpoints.jsonl")
	cfg := filepath.Join(dir, "stepgate.yaml")
	if err := os.WriteFile(cfg, []byte("server:\n  audit:\n    checkpoint_file: "+sink+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, dir, "sqlite://"+path, "--config", cfg)
	env := pipelineEnv(s, s.token("billing-ci"))
	if r := run(t, dir, env, "check", "--plan", repo(t, "examples/dev-tag-change.plan.json"), "--workspace", "billing-dev"); r.code != 0 {
		t.Fatalf("allowed check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := run(t, dir, env, "check", "--plan", repo(t, "examples/prod-iam.plan.json"), "--workspace", "billing-prod", "--wait", "1s")
	id := checkID.FindString(r.stdout + r.stderr)
	if r.code != 3 || id == "" {
		t.Fatalf("pending check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	svc, st := s.domain()
	approvers(t, st, "alice")
	if _, err := svc.Record(context.Background(), id, &gate.Proof{Subject: "alice", Groups: []string{"approvers"}, Approved: true, AMR: []string{"hwk", "user"}, AAL: 3, AuthTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, env, "check", "--plan", repo(t, "examples/billing-rg-prod.plan.json"), "--workspace", "billing-dev", "--wait", "1s"); r.code != 0 && r.code != 3 {
		t.Fatalf("third check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	s.stop()
	key := app.DevMasterKeyPath("sqlite://" + path)

	verify := func(t *testing.T, db string, extra ...string) result {
		t.Helper()
		return run(t, dir, nil, append([]string{"audit", "verify", "--database", "sqlite://" + db, "--master-key-file", key}, extra...)...)
	}
	// attacked copies the database and runs attack on the copy.
	attacked := func(t *testing.T, attack func(t *testing.T, db *sql.DB)) string {
		t.Helper()
		return attackedCopy(t, path, "attacked.db", attack)
	}
	exec := func(t *testing.T, db *sql.DB, query string, args ...any) {
		t.Helper()
		res, err := db.Exec(query, args...)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			t.Fatalf("%s changed nothing: the attack is not the one meant", query)
		}
	}
	lastCheckpoint := func(t *testing.T, db *sql.DB) (seq int64) {
		t.Helper()
		if err := db.QueryRow(`SELECT max(seq) FROM audit_checkpoints`).Scan(&seq); err != nil {
			t.Fatal(err)
		}
		return seq
	}

	t.Run("ok/untampered", func(t *testing.T) {
		for _, extra := range [][]string{nil, {"--checkpoints", sink}} {
			r := verify(t, path, extra...)
			if r.code != 0 || !strings.Contains(r.stdout, "audit log intact") || !strings.Contains(r.stdout, "checkpoint") {
				t.Errorf("audit verify %v: exit %d, want 0 and the log intact with its checkpoints\n%s%s", extra, r.code, r.stdout, r.stderr)
			}
		}
	})
	for _, tt := range []struct {
		name     string
		attack   func(t *testing.T, db *sql.DB)
		wantDB   string // what verify says from the database alone; "" for nothing found
		wantFile string // with --checkpoints
	}{
		{
			name: "fail/last-rows-deleted",
			attack: func(t *testing.T, db *sql.DB) {
				exec(t, db, `DELETE FROM audit_events WHERE seq >= ?`, lastCheckpoint(t, db)-1)
			},
			wantDB: "truncated", wantFile: "truncated",
		},
		{
			name:   "fail/approval-deleted-and-chain-resealed",
			attack: func(t *testing.T, db *sql.DB) { resealWithout(t, db, audit.CheckApproval) },
			wantDB: "rechained", wantFile: "rechained",
		},
		{
			name:   "fail/checkpoints-deleted",
			attack: func(t *testing.T, db *sql.DB) { exec(t, db, `DELETE FROM audit_checkpoints`) },
			wantDB: "checkpoint_missing", wantFile: "checkpoint_missing",
		},
		{
			name: "fail/checkpoint-forged",
			attack: func(t *testing.T, db *sql.DB) {
				exec(t, db, `UPDATE audit_checkpoints SET hash = ? WHERE seq = ?`, strings.Repeat("0", 64), lastCheckpoint(t, db))
			},
			wantDB: "bad_signature", wantFile: "bad_signature",
		},
		{
			// The newest checkpoint and the events after the one before
			// it: from the database alone nothing shows (what no database
			// can prove); the checkpoint file does.
			name: "fail/tail-and-newest-checkpoint-deleted",
			attack: func(t *testing.T, db *sql.DB) {
				var prev int64
				if err := db.QueryRow(`SELECT max(seq) FROM audit_checkpoints WHERE seq < (SELECT max(seq) FROM audit_checkpoints)`).Scan(&prev); err != nil {
					t.Fatal(err)
				}
				exec(t, db, `DELETE FROM audit_checkpoints WHERE seq > ?`, prev)
				exec(t, db, `DELETE FROM audit_events WHERE seq > ?`, prev)
			},
			wantDB: "", wantFile: "truncated",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := attacked(t, tt.attack)
			for _, c := range []struct {
				extra []string
				want  string
			}{{nil, tt.wantDB}, {[]string{"--checkpoints", sink}, tt.wantFile}} {
				r := verify(t, db, c.extra...)
				if c.want == "" {
					if r.code != 0 {
						t.Errorf("audit verify %v: exit %d, want 0 (nothing a database alone can show)\n%s%s", c.extra, r.code, r.stdout, r.stderr)
					}
					continue
				}
				if r.code != 6 || !strings.Contains(r.stdout+r.stderr, c.want) {
					t.Errorf("audit verify %v: exit %d, want 6 naming %s\n%s%s", c.extra, r.code, c.want, r.stdout, r.stderr)
				}
			}
			r := verify(t, db, "--checkpoints", sink, "--output", "json")
			var out struct {
				Intact   bool `json:"intact"`
				Findings []struct {
					Kind string `json:"kind"`
				} `json:"findings"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				t.Fatalf("audit verify --output json: %v\n%s%s", err, r.stdout, r.stderr)
			}
			found := false
			for _, f := range out.Findings {
				found = found || f.Kind == tt.wantFile
			}
			if out.Intact || !found || r.code != 6 {
				t.Errorf("audit verify --output json: exit %d, %+v; want not intact with a %s finding", r.code, out, tt.wantFile)
			}
		})
	}
}

// resealWithout deletes the first event of type typ and seals the events
// after it again with the project's own audit.Seal, so that the chain on
// its own verifies.
func resealWithout(t *testing.T, db *sql.DB, typ string) {
	t.Helper()
	rows, err := db.Query(`SELECT seq, occurred_at, type, actor, subject, data, prev_hash, hash FROM audit_events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var all []*audit.Event
	for rows.Next() {
		var e audit.Event
		var at int64
		var data sql.NullString
		if err := rows.Scan(&e.Seq, &at, &e.Type, &e.Actor, &e.Subject, &data, &e.PrevHash, &e.Hash); err != nil {
			t.Fatal(err)
		}
		e.Time = time.UnixMicro(at).UTC()
		if data.Valid {
			e.Data = json.RawMessage(data.String)
		}
		all = append(all, &e)
	}
	rows.Close()
	cut := -1
	for i, e := range all {
		if e.Type == typ {
			cut = i
			break
		}
	}
	if cut < 1 {
		t.Fatalf("no %s event to delete", typ)
	}
	if _, err := db.Exec(`DELETE FROM audit_events WHERE seq >= ?`, all[cut].Seq); err != nil {
		t.Fatal(err)
	}
	prev := all[cut-1]
	for _, e := range all[cut+1:] {
		if err := audit.Seal(prev, e); err != nil {
			t.Fatal(err)
		}
		var data any
		if len(e.Data) > 0 {
			data = string(e.Data)
		}
		if _, err := db.Exec(`INSERT INTO audit_events (seq, occurred_at, type, actor, subject, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, e.Time.UnixMicro(), e.Type, e.Actor, e.Subject, data, e.PrevHash, e.Hash); err != nil {
			t.Fatal(err)
		}
		prev = e
	}
	if err := audit.Verify(append(all[:cut:cut], all[cut+1:]...)); err != nil {
		t.Fatalf("the re-sealed chain does not verify on its own (%v): the attack is not the one meant", err)
	}
}

// editedPlanDigestIsFound: in a copy of s's database holding a passkey
// approval, the approved check's plan digest is changed (as someone
// holding the database would, to pass another plan off as the approved
// one): `audit verify` reports the approval's evidence, which signed the
// digest the check had.
func editedPlanDigestIsFound(t *testing.T, dir string, s *server) {
	t.Helper()
	cp := attackedCopy(t, strings.TrimPrefix(s.database, "sqlite://"), "edited.db", func(t *testing.T, db *sql.DB) {
		res, err := db.Exec(`UPDATE checks SET plan_sha256 = ? WHERE id IN (SELECT check_id FROM approvals WHERE evidence LIKE '%"webauthn"%')`, strings.Repeat("0", 64))
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			t.Fatal("no check with a passkey approval to edit")
		}
	})
	r := run(t, dir, []string{"STEPGATE_PUBLIC_URL=" + s.url}, "audit", "verify", "--database", "sqlite://"+cp, "--master-key-file", app.DevMasterKeyPath(s.database))
	if r.code != 6 || !strings.Contains(r.stdout, "TAMPERED evidence") || !strings.Contains(r.stdout, "plan digest") {
		t.Errorf("audit verify after editing the approved check's plan digest: exit %d, want 6 reporting the evidence\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// attackedCopy copies the SQLite database at path (VACUUM INTO a file
// named name) and runs attack on the copy, whose path it returns.
func attackedCopy(t *testing.T, path, name string, attack func(t *testing.T, db *sql.DB)) string {
	t.Helper()
	src, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cp := filepath.Join(t.TempDir(), name)
	if _, err := src.Exec(`VACUUM INTO ?`, cp); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", cp)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	attack(t, db)
	return cp
}
