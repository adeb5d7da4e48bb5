package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/chain.golden.json")

// goldenFile pins the hash format and the checkpoint signature format: a
// small chain, its hashes and a checkpoint signed with a fixed test key.
var goldenFile = filepath.Join("testdata", "chain.golden.json")

// golden is the content of goldenFile.
type golden struct {
	Comment    string      `json:"comment"`
	PublicKey  []byte      `json:"public_key"`
	Events     []*Event    `json:"events"`
	Checkpoint *Checkpoint `json:"checkpoint"`
}

// goldenKey is the fixed test key (never used outside tests).
func goldenKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5e}, ed25519.SeedSize))
}

// goldenChain builds the chain from fixed inputs and signs its head.
func goldenChain(t *testing.T) *golden {
	t.Helper()
	at := func(s int) time.Time { return time.Date(2026, 12, 1, 9, 0, s, 123456000, time.UTC) }
	in := []*Event{
		{Time: at(0), Type: TokenCreated, Actor: "cli:ops", Subject: "token:tok_1", Data: json.RawMessage(`{"name":"billing-ci","workspaces":["billing-*"]}`)},
		{Time: at(1), Type: CheckCreated, Actor: "billing-ci", Subject: "chk_1", Data: json.RawMessage(`{"kind":"terraform.apply","plan_sha256":"` + sixtyFour("a") + `","z": 1.50, "a": [1e2, -0, null, "\u00e9<&>"]}`)},
		{Time: at(2), Type: CheckPending, Actor: "policy", Subject: "chk_1"},
		{Time: at(3), Type: CheckApproval, Actor: "alice", Subject: "chk_1", Data: json.RawMessage(`{"aal":3,"amr":["hwk","user"],"approval":"apr_1"}`)},
		{Time: at(3), Type: CheckApproved, Actor: "alice", Subject: "chk_1"},
		{Time: at(3), Type: GrantIssued, Actor: "alice", Subject: "chk_1", Data: json.RawMessage(`{"grant_id":"grt_1","expires_at":"2026-12-01T09:15:03.123456Z"}`)},
	}
	var prev *Event
	for _, e := range in {
		if err := Seal(prev, e); err != nil {
			t.Fatal(err)
		}
		prev = e
	}
	cp := &Checkpoint{Seq: prev.Seq, Hash: prev.Hash, Time: at(4), KeyID: "test-key"}
	key := goldenKey()
	if err := SignCheckpoint(cp, key); err != nil {
		t.Fatal(err)
	}
	return &golden{
		Comment:    "Pins the audit hash and checkpoint formats; rewrite with go test ./internal/audit -update only for a deliberate format change (old logs stop verifying).",
		PublicKey:  key.Public().(ed25519.PublicKey),
		Events:     in,
		Checkpoint: cp,
	}
}

func sixtyFour(c string) string { return string(bytes.Repeat([]byte(c), 64)) }

// TestGoldenChain: the chain built today hashes and signs exactly as the
// committed one, and the committed one still verifies: a change to the
// canonical encoding of events or checkpoints fails here.
func TestGoldenChain(t *testing.T) {
	want, err := json.MarshalIndent(goldenChain(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile(goldenFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatalf("reading %s: %v (create it with -update)", goldenFile, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the chain built from the fixed inputs differs from %s: the hash or checkpoint encoding changed, and logs written before no longer verify.\nwant:\n%s\ngot:\n%s", goldenFile, got, want)
	}

	// The committed chain, re-hashed and verified on its own.
	var g golden
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("decoding %s: %v", goldenFile, err)
	}
	if len(g.Events) != 6 || g.Checkpoint == nil {
		t.Fatalf("%s has %d events and checkpoint %v, want 6 and one", goldenFile, len(g.Events), g.Checkpoint)
	}
	for _, e := range g.Events {
		h, err := HashOf(e)
		if err != nil {
			t.Fatal(err)
		}
		if h != e.Hash {
			t.Errorf("event %d of %s hashes to %s, the file says %s: the canonical encoding changed", e.Seq, goldenFile, h, e.Hash)
		}
	}
	if err := Verify(g.Events); err != nil {
		t.Errorf("Verify(%s) = %v, want nil", goldenFile, err)
	}
	last := g.Events[len(g.Events)-1]
	if g.Checkpoint.Seq != last.Seq || g.Checkpoint.Hash != last.Hash {
		t.Errorf("the checkpoint names %d/%s, the head is %d/%s", g.Checkpoint.Seq, g.Checkpoint.Hash, last.Seq, last.Hash)
	}
	if err := VerifyCheckpoint(g.Checkpoint, g.PublicKey); err != nil {
		t.Errorf("VerifyCheckpoint(%s) = %v, want nil", goldenFile, err)
	}
}

func TestCheckpointSignature(t *testing.T) {
	key := goldenKey()
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x01}, ed25519.SeedSize))
	good := func() *Checkpoint {
		cp := &Checkpoint{Seq: 7, Hash: sixtyFour("b"), Time: time.Date(2026, 12, 1, 9, 0, 0, 1000, time.UTC), KeyID: "k1"}
		if err := SignCheckpoint(cp, key); err != nil {
			t.Fatal(err)
		}
		return cp
	}
	for _, tt := range []struct {
		name   string
		edit   func(*Checkpoint)
		pub    ed25519.PublicKey
		wantOK bool
	}{
		{"ok/signed", func(*Checkpoint) {}, key.Public().(ed25519.PublicKey), true},
		{"ok/time-zone-does-not-matter", func(c *Checkpoint) { c.Time = c.Time.In(time.FixedZone("X", 3600)) }, key.Public().(ed25519.PublicKey), true},
		{"fail/other-key", func(*Checkpoint) {}, other.Public().(ed25519.PublicKey), false},
		{"fail/seq-moved", func(c *Checkpoint) { c.Seq = 6 }, key.Public().(ed25519.PublicKey), false},
		{"fail/hash-changed", func(c *Checkpoint) { c.Hash = sixtyFour("c") }, key.Public().(ed25519.PublicKey), false},
		{"fail/time-changed", func(c *Checkpoint) { c.Time = c.Time.Add(time.Microsecond) }, key.Public().(ed25519.PublicKey), false},
		{"fail/kid-changed", func(c *Checkpoint) { c.KeyID = "k2" }, key.Public().(ed25519.PublicKey), false},
		{"fail/signature-truncated", func(c *Checkpoint) { c.Signature = c.Signature[:10] }, key.Public().(ed25519.PublicKey), false},
		{"fail/no-signature", func(c *Checkpoint) { c.Signature = nil }, key.Public().(ed25519.PublicKey), false},
		{"fail/bad-hash", func(c *Checkpoint) { c.Hash = "x" }, key.Public().(ed25519.PublicKey), false},
		{"fail/zero-seq", func(c *Checkpoint) { c.Seq = 0 }, key.Public().(ed25519.PublicKey), false},
		{"fail/bad-public-key", func(*Checkpoint) {}, ed25519.PublicKey("short"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cp := good()
			tt.edit(cp)
			err := VerifyCheckpoint(cp, tt.pub)
			if tt.wantOK != (err == nil) {
				t.Fatalf("VerifyCheckpoint() = %v, want ok %v", err, tt.wantOK)
			}
			if err != nil && !errors.Is(err, ErrBadCheckpoint) {
				t.Errorf("VerifyCheckpoint() = %v, want an ErrBadCheckpoint", err)
			}
		})
	}
}
