package audit

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func chain(t *testing.T, n int) []*Event {
	t.Helper()
	var out []*Event
	var prev *Event
	for i := range n {
		e := &Event{Time: time.Date(2026, 11, 30, 10, 0, i, 123456000, time.UTC), Type: CheckCreated, Actor: "ci", Subject: "chk_1",
			Data: json.RawMessage(`{"b": 2, "a": [1, "x"]}`)}
		if err := Seal(prev, e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
		prev = e
	}
	return out
}

func clone(es []*Event) []*Event {
	out := make([]*Event, len(es))
	for i, e := range es {
		c := *e
		out[i] = &c
	}
	return out
}

func TestVerify(t *testing.T) {
	for _, tt := range []struct {
		name    string
		tamper  func([]*Event) []*Event
		wantSeq int64 // 0: intact
		reason  string
	}{
		{"ok/intact", func(es []*Event) []*Event { return es }, 0, ""},
		{"ok/empty", func([]*Event) []*Event { return nil }, 0, ""},
		{"ok/data-key-order-and-spaces-do-not-matter", func(es []*Event) []*Event {
			es[2].Data = json.RawMessage(`{"a":[1,"x"],"b":2}`)
			return es
		}, 0, ""},
		{"fail/edited-actor", func(es []*Event) []*Event { es[2].Actor = "mallory"; return es }, 3, "edited"},
		{"fail/edited-data", func(es []*Event) []*Event { es[3].Data = json.RawMessage(`{"b": 3, "a": [1, "x"]}`); return es }, 4, "edited"},
		{"fail/edited-time", func(es []*Event) []*Event { es[1].Time = es[1].Time.Add(time.Microsecond); return es }, 2, "edited"},
		{"fail/removed", func(es []*Event) []*Event { return append(es[:2], es[3:]...) }, 3, "missing"},
		{"fail/removed-first", func(es []*Event) []*Event { return es[1:] }, 1, "missing"},
		{"fail/reordered", func(es []*Event) []*Event { es[1], es[2] = es[2], es[1]; return es }, 2, "missing"},
		{"fail/duplicated", func(es []*Event) []*Event { return append(es[:3], es[2:]...) }, 3, "out of order"},
		{"fail/rewritten-tail", func(es []*Event) []*Event {
			// Edit an event and recompute its own hash: the next one's link breaks.
			es[2].Actor = "mallory"
			es[2].Hash, _ = HashOf(es[2])
			return es
		}, 4, "previous hash"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.tamper(clone(chain(t, 5))))
			if tt.wantSeq == 0 {
				if err != nil {
					t.Fatalf("Verify = %v, want an intact chain", err)
				}
				return
			}
			var be *BreakError
			if !errors.As(err, &be) || !errors.Is(err, ErrBroken) {
				t.Fatalf("Verify = %v, want a BreakError", err)
			}
			if be.Seq != tt.wantSeq || !strings.Contains(be.Reason, tt.reason) {
				t.Errorf("Verify = %v, want sequence %d (%s)", err, tt.wantSeq, tt.reason)
			}
		})
	}
}

func TestSeal(t *testing.T) {
	es := chain(t, 2)
	if es[0].Seq != 1 || es[0].PrevHash != GenesisHash || es[1].Seq != 2 || es[1].PrevHash != es[0].Hash {
		t.Errorf("chain links: %+v %+v", es[0], es[1])
	}
	if len(es[0].Hash) != 64 || es[0].Hash == es[1].Hash {
		t.Errorf("hashes: %q %q", es[0].Hash, es[1].Hash)
	}
	if err := Seal(nil, &Event{Data: json.RawMessage(`{not json`)}); err == nil {
		t.Error("Seal accepted invalid data")
	}
}

// TestResume: a verifier started at a vouched-for event checks the events
// after it, and refuses to start at an event whose content was edited.
func TestResume(t *testing.T) {
	es := chain(t, 5)
	var v Verifier
	if err := v.Resume(es[2]); err != nil {
		t.Fatalf("Resume(event 3) = %v, want nil", err)
	}
	for _, e := range es[3:] {
		if err := v.Next(e); err != nil {
			t.Fatalf("Next(%d) after Resume = %v, want nil", e.Seq, err)
		}
	}
	if v.Count() != 5 {
		t.Errorf("Count() = %d, want 5", v.Count())
	}
	edited := clone(es)
	edited[2].Actor = "mallory"
	var w Verifier
	var be *BreakError
	if err := w.Resume(edited[2]); !errors.As(err, &be) || be.Seq != 3 {
		t.Errorf("Resume(edited event 3) = %v, want a BreakError at 3", err)
	}
}
