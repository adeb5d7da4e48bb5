package checkpoint_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/checkpoint"
	"github.com/stepgate/stepgate/internal/clocktest"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

type fixture struct {
	st    store.Store
	clock *clocktest.Clock
	ck    *keys.CheckpointKeys
	w     *checkpoint.Writer
	file  string
}

func newFixture(t testing.TB, sinks ...checkpoint.Sink) *fixture {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "stepgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	master, err := keys.NewMaster(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	clock := clocktest.New(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	ck := keys.NewCheckpointKeys(master, clock.Now)
	path := filepath.Join(t.TempDir(), "checkpoints.jsonl")
	file, err := checkpoint.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { file.Close() })
	w := checkpoint.NewWriter(st, ck, slog.New(slog.NewTextHandler(io.Discard, nil)), clock.Now, append([]checkpoint.Sink{file}, sinks...)...)
	return &fixture{st: st, clock: clock, ck: ck, w: w, file: path}
}

func (f *fixture) add(t *testing.T, n int) {
	t.Helper()
	for range n {
		f.clock.Add(time.Second)
		if err := f.st.AppendAudit(t.Context(), &audit.Event{Time: f.clock.Now(), Type: audit.CheckCreated, Actor: "ci", Subject: "chk"}); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) lastSeq(t *testing.T) int64 {
	t.Helper()
	cp, err := f.st.LastAuditCheckpoint(t.Context())
	if errors.Is(err, store.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return cp.Seq
}

// chanSink hands each checkpoint written to the test.
type chanSink chan *audit.Checkpoint

func (c chanSink) Write(_ context.Context, cp *audit.Checkpoint) error {
	c <- cp
	return nil
}

// TestRun: the loop checkpoints new events at each tick, writes nothing
// when nothing is new, copies each checkpoint to the file, and returns
// when its context ends.
func TestRun(t *testing.T) {
	written := make(chanSink, 10)
	f := newFixture(t, written)
	if kid, err := f.w.Ensure(t.Context()); err != nil || kid == "" {
		t.Fatalf("Ensure() = %q, %v; want a new key", kid, err)
	}
	// run runs the loop, sends it ticks (unbuffered: each send returns
	// once the loop took it), and stops it, returning when it returned:
	// every checkpoint of those ticks is finished then.
	run := func(ticks int) {
		ctx, cancel := context.WithCancel(t.Context())
		tick := make(chan time.Time)
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.w.Run(ctx, tick)
		}()
		for range ticks {
			tick <- f.clock.Now()
		}
		// One more tick is taken only once the last one's checkpoint is
		// done; then stop.
		tick <- f.clock.Now()
		cancel()
		<-done
	}
	f.add(t, 3)
	run(1)
	if got := f.lastSeq(t); got != 4 { // the key's event and 3
		t.Errorf("after a tick, the newest checkpoint is at %d, want 4", got)
	}
	run(3) // nothing new
	f.add(t, 2)
	run(1)
	if got := f.lastSeq(t); got != 6 {
		t.Errorf("after new events and a tick, the newest checkpoint is at %d, want 6", got)
	}
	cps, err := f.st.ListAuditCheckpoints(t.Context(), 0, 100)
	if err != nil || len(cps) != 2 {
		t.Fatalf("checkpoints = %d, %v; want 2 (none when nothing was new)", len(cps), err)
	}
	if len(written) != 2 {
		t.Errorf("%d checkpoints published, want 2", len(written))
	}
	inFile, problems, err := checkpoint.ReadFile(f.file)
	if err != nil || len(problems) > 0 || len(inFile) != 2 || !inFile[0].Equal(cps[0]) || !inFile[1].Equal(cps[1]) {
		t.Errorf("the file has %d checkpoints (%v, %v), want the database's 2", len(inFile), problems, err)
	}
	if cp := f.w.Last(); cp == nil || cp.Seq != 6 {
		t.Errorf("Last() = %+v, want the checkpoint at 6", cp)
	}
}

// TestWriterRefusesATamperedLog: the writer never signs a head it cannot
// vouch for: an event edited after the newest checkpoint, the newest
// checkpoint's event replaced, or a newest checkpoint signed by a key that
// is not the server's.
func TestWriterRefusesATamperedLog(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	if _, err := f.w.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	f.add(t, 2)
	if _, err := f.w.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	f.add(t, 1)
	// A forged checkpoint, at the head, signed by another key.
	other := keys.NewCheckpointKeys(mustMaster(t, 9), f.clock.Now)
	fake := &memKeys{}
	if _, err := other.Ensure(ctx, fake); err != nil {
		t.Fatal(err)
	}
	k, err := other.Signer(ctx, fake)
	if err != nil {
		t.Fatal(err)
	}
	head, err := f.st.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp := &audit.Checkpoint{Seq: head.Seq, Hash: head.Hash, Time: f.clock.Now(), KeyID: k.ID}
	if err := audit.SignCheckpoint(cp, k.Private); err != nil {
		t.Fatal(err)
	}
	if err := f.st.AddAuditCheckpoint(ctx, cp); err != nil {
		t.Fatal(err)
	}
	if _, err := f.w.Checkpoint(ctx); !errors.Is(err, checkpoint.ErrTampered) || !strings.Contains(err.Error(), k.ID) {
		t.Errorf("Checkpoint() over a forged checkpoint = %v, want ErrTampered naming key %s", err, k.ID)
	}
}

type memKeys struct{ keys []*store.CheckpointKey }

func (m *memKeys) AddCheckpointKey(_ context.Context, k *store.CheckpointKey) error {
	m.keys = append(m.keys, k)
	return nil
}

func (m *memKeys) ListCheckpointKeys(context.Context) ([]*store.CheckpointKey, error) {
	return m.keys, nil
}

func mustMaster(t *testing.T, b byte) *keys.Master {
	t.Helper()
	m, err := keys.NewMaster(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	t.Run("ok/created-0600-and-appended", func(t *testing.T) {
		path := filepath.Join(dir, "a.jsonl")
		if err := os.WriteFile(path, []byte(`{"seq":1,"hash":"`+strings.Repeat("a", 64)+`","time":"2026-12-01T00:00:00Z","kid":"k","sig":"AQ=="}`+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := checkpoint.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cp := &audit.Checkpoint{Seq: 2, Hash: strings.Repeat("b", 64), Time: time.Date(2026, 12, 1, 0, 1, 0, 5000, time.UTC), KeyID: "k", Signature: []byte{2}}
		if err := f.Write(t.Context(), cp); err != nil {
			t.Fatal(err)
		}
		f.Close()
		got, problems, err := checkpoint.ReadFile(path)
		if err != nil || len(problems) > 0 || len(got) != 2 || got[0].Seq != 1 || !got[1].Equal(cp) {
			t.Errorf("ReadFile() = %+v, %v, %v; want the first line kept and the checkpoint appended", got, problems, err)
		}
		created := filepath.Join(dir, "new.jsonl")
		f, err = checkpoint.OpenFile(created)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if fi, err := os.Stat(created); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("created file mode %v (%v), want 0600", fi.Mode().Perm(), err)
		}
	})
	t.Run("fail/readable-by-others", func(t *testing.T) {
		path := filepath.Join(dir, "open.jsonl")
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := checkpoint.OpenFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("OpenFile(mode 0644) = %v, want a refusal saying chmod 600", err)
		}
	})
	t.Run("fail/damaged-lines-are-named", func(t *testing.T) {
		path := filepath.Join(dir, "bad.jsonl")
		body := "not json\n\n" + `{"seq":3,"hash":"x","time":"2026-12-01T00:00:00Z","kid":"k","sig":"AQ==","extra":1}` + "\n" + `{"seq":4,"hash":"` + strings.Repeat("c", 64) + `","time":"2026-12-01T00:00:00Z","kid":"k","sig":"AQ=="}`
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		got, problems, err := checkpoint.ReadFile(path)
		if err != nil || len(got) != 1 || got[0].Seq != 4 || len(problems) != 2 || !strings.Contains(problems[0].Error(), "line 1") || !strings.Contains(problems[1].Error(), "line 3") {
			t.Errorf("ReadFile() = %d checkpoints, problems %v, %v; want the good last line and lines 1 and 3 named", len(got), problems, err)
		}
	})
	t.Run("fail/missing", func(t *testing.T) {
		if _, _, err := checkpoint.ReadFile(filepath.Join(dir, "none.jsonl")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ReadFile(missing) = %v, want ErrNotExist", err)
		}
	})
}
