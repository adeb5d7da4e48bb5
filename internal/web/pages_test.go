package web

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/policy"
)

// TestChecksListPages: a flood of pending checks cannot push the older,
// real ones out of sight: the list is paged, and the oldest check is on
// the last page.
func TestChecksListPages(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers")
	f.putCheck(t, "chk_real_oldest", checkSpec{requester: "ci", req: policy.Requirements{AAL: 2, Approvals: 1}})
	n := 2*gate.PageSize + 10
	for i := range n {
		f.clock.Add(time.Second)
		f.putCheck(t, fmt.Sprintf("chk_flood_%03d", i), checkSpec{requester: "ci", req: policy.Requirements{AAL: 2, Approvals: 1}})
	}
	b := f.browser(t)
	b.signIn(t, "bob")
	first := b.get(t, "/checks")
	if strings.Contains(first.body, "chk_real_oldest") || !strings.Contains(first.body, fmt.Sprintf("chk_flood_%03d", n-1)) {
		t.Errorf("page 1 should hold the newest checks")
	}
	if !strings.Contains(first.body, `href="/checks?page=2"`) {
		t.Errorf("page 1 has no link to page 2")
	}
	last := b.get(t, "/checks?page=3")
	if last.status != 200 || !strings.Contains(last.body, "chk_real_oldest") {
		t.Errorf("page 3: %d, want the oldest check on it", last.status)
	}
	if strings.Contains(last.body, `page=4`) || !strings.Contains(last.body, `href="/checks?page=2"`) {
		t.Errorf("page 3 should link back to page 2 and to no page 4")
	}
}
