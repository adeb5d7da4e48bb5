package gate

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/plan"
)

// What the server keeps of a plan for the review page is bounded: a large
// value is kept as a marker naming its size and digest (two different
// large values still read as different), a change is kept within
// MaxStoredChange, and a check within MaxStoredChanges; what does not fit
// is counted as left out. The policy saw every value, and the plan's
// digest covers them all.
func TestChangeLogIsBounded(t *testing.T) {
	big := func(c byte) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"name": "x", "user_data": strings.Repeat(string(c), 100<<10)})
		return b
	}
	var l changeLog
	for i := range 1200 {
		l.add(&plan.Change{Address: "aws_instance.x[" + string(rune('a'+i%26)) + "]", Type: "aws_instance", Action: plan.ActionUpdate, Before: big('a'), After: big('b')})
	}
	out := l.json()
	if len(out) > MaxStoredChanges+1<<20 {
		t.Fatalf("stored %d bytes for 1,200 changes of 200 KB, want at most about %d", len(out), MaxStoredChanges)
	}
	var ch Changes
	if err := json.Unmarshal(out, &ch); err != nil {
		t.Fatal(err)
	}
	if len(ch.Changes) == 0 || len(ch.Changes)+ch.Dropped != 1200 {
		t.Fatalf("kept %d and dropped %d of 1200", len(ch.Changes), ch.Dropped)
	}
	c := ch.Changes[0]
	if len(c.Before)+len(c.After) > MaxStoredChange {
		t.Errorf("one change kept %d bytes, want at most %d", len(c.Before)+len(c.After), MaxStoredChange)
	}
	var before, after map[string]string
	if err := json.Unmarshal(c.Before, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(c.After, &after); err != nil {
		t.Fatal(err)
	}
	if before["name"] != "x" || !strings.HasPrefix(before["user_data"], "(not kept: 102402 bytes, sha256 ") {
		t.Errorf("before = %.120v, want the small value kept and the large one marked", before)
	}
	if before["user_data"] == after["user_data"] {
		t.Errorf("two different large values are kept as the same marker %q", before["user_data"])
	}
	// A small change is kept as it is.
	var s changeLog
	small := &plan.Change{Address: "a.b", Type: "a", Action: plan.ActionCreate, After: json.RawMessage(`{"k":"v"}`)}
	s.add(small)
	var sc Changes
	_ = json.Unmarshal(s.json(), &sc)
	if len(sc.Changes) != 1 || string(sc.Changes[0].After) != `{"k":"v"}` {
		t.Errorf("a small change = %+v, want it as it is", sc.Changes)
	}
}
