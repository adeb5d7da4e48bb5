package app

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/checkpoint"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/policy"
)

// serveOnce runs Serve on db until stop is called; it returns the address
// and stop, which returns Serve's error.
func serveOnce(t *testing.T, dir string, audit config.Audit) (addr string, stop func() error, err error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeOptions{
			Server: config.Server{
				Listen: "127.0.0.1:0", Database: "sqlite://" + filepath.Join(dir, "stepgate.db"),
				CheckTTL: config.Duration(time.Hour), GrantTTL: config.Duration(15 * time.Minute), Audience: "stepgate",
				Audit: audit,
			},
			Policy: policy.DefaultConfig(), MaxPlan: 1 << 20, Dev: true,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: io.Discard, Now: time.Now,
			OnListen: func(a string) { listening <- a },
		})
	}()
	select {
	case a := <-listening:
		return a, func() error { cancel(); return <-done }, nil
	case err := <-done:
		cancel()
		return "", nil, err
	}
}

// TestServeCheckpoints: serve checkpoints the log when it starts (to the
// checkpoint file too) and exports the newest checkpoint as gauges; it
// checkpoints what came after at shutdown; and it refuses to start on a
// log changed under its newest checkpoint.
func TestServeCheckpoints(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "checkpoints.jsonl")
	addr, stop, err := serveOnce(t, dir, config.Audit{CheckpointFile: file})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^stepgate_audit_checkpoint_seq (\d+)$`).FindStringSubmatch(string(body))
	if m == nil || m[1] == "0" || !regexp.MustCompile(`(?m)^stepgate_audit_checkpoint_timestamp_seconds \d`).Match(body) {
		t.Errorf("/metrics has no checkpoint gauges with a checkpoint:\n%s", grep(string(body), "stepgate_audit"))
	}
	cps, problems, err := checkpoint.ReadFile(file)
	if err != nil || len(problems) > 0 || len(cps) != 1 {
		t.Fatalf("the checkpoint file after start has %d checkpoints (%v, %v), want 1", len(cps), problems, err)
	}

	// An event appended beside the server (as the admin commands do) is
	// sealed at shutdown.
	db, err := sql.Open("sqlite", filepath.Join(dir, "stepgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := OpenStore(context.Background(), "sqlite://"+filepath.Join(dir, "stepgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AppendAudit(context.Background(), eventNow()); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	head, err := st.AuditHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if last, err := st.LastAuditCheckpoint(context.Background()); err != nil || last.Seq != head.Seq {
		t.Errorf("after shutdown the newest checkpoint is %+v (%v), want the head %d", last, err, head.Seq)
	}

	// Edit the newest checkpointed event: the next start is refused.
	if _, err := db.Exec(`UPDATE audit_events SET actor = 'mallory' WHERE seq = ?`, head.Seq); err != nil {
		t.Fatal(err)
	}
	if _, stop, err := serveOnce(t, dir, config.Audit{CheckpointFile: file}); !errors.Is(err, checkpoint.ErrTampered) || !strings.Contains(err.Error(), "stepgate audit verify") {
		if stop != nil {
			stop()
		}
		t.Errorf("Serve on a tampered log = %v, want ErrTampered telling to run stepgate audit verify", err)
	}
}

func grep(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func eventNow() *audit.Event {
	return &audit.Event{Time: time.Now(), Type: audit.TokenCreated, Actor: "cli:test", Subject: "token:t"}
}
