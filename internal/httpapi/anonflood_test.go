package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/clocktest"
)

// Anybody who can reach the server can be refused without a token. Each
// refusal is audited, so without a bound an anonymous flood would become a
// flood of audit writes (and a growing database). The first refusal from an
// address is written at once; the next ones at most once a minute, with how
// many were refused meanwhile, so that nothing is lost but the detail.
func TestAnonymousFloodDoesNotFloodTheAuditLog(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC))
	s := newStack(t, stackOpts{now: clock.Now})
	consume := func() {
		t.Helper()
		resp, err := http.Post(s.srv.URL+"/v1/grants/consume", "application/json", strings.NewReader(`{"grant":"x.y.z"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	}
	refused := func() []*audit.Event {
		t.Helper()
		events, err := s.st.ListAudit(context.Background(), 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		var out []*audit.Event
		for _, ev := range events {
			if ev.Type == audit.GrantRefused && ev.Actor == "anonymous" {
				out = append(out, ev)
			}
		}
		return out
	}

	for range 200 {
		consume()
	}
	if got := refused(); len(got) != 1 {
		t.Fatalf("200 anonymous refusals within a minute wrote %d audit events, want 1", len(got))
	}
	clock.Add(61 * time.Second)
	consume()
	got := refused()
	if len(got) != 2 {
		t.Fatalf("after a minute: %d audit events, want 2", len(got))
	}
	var data struct {
		Refused int `json:"refused"`
	}
	if err := json.Unmarshal(got[1].Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.Refused != 200 {
		t.Errorf("the second event stands for %d refusals, want 200 (199 unwritten and itself): %s", data.Refused, got[1].Data)
	}
}
