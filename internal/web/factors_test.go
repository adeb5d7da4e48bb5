package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/account"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/notify"
)

// factorEvents records what the web side tells people about their factors.
type factorEvents struct {
	mu  sync.Mutex
	got []string
}

func (e *factorEvents) NotifyFactor(_ context.Context, event string, fc notify.FactorChange) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, fmt.Sprintf("%s %s %s %s", event, fc.User, fc.Kind, fc.Via))
}

func (e *factorEvents) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.got)
}

// newNotifiedFixture is a fixture whose factor changes are recorded.
func newNotifiedFixture(t *testing.T) (*fixture, *factorEvents) {
	events := &factorEvents{}
	return newFixture(t, func(w *Web, _ string) { w.SetNotifier(events) }), events
}

// TestFactorChangesNeedFreshStepUp: with a session whose proof is 10
// minutes old (a stolen cookie), adding a TOTP factor or a passkey, or
// removing a factor, is refused and audited; after proving again, within
// 5 minutes, it works and the person is notified.
func TestFactorChangesNeedFreshStepUp(t *testing.T) {
	f, events := newNotifiedFixture(t)
	u := f.addUser(t, "bob", "approvers")
	b := f.browser(t)
	b.signIn(t, "bob")
	// A set-up begun while the proof was fresh...
	add := b.get(t, "/account/add")
	if add.status != http.StatusOK {
		t.Fatalf("add page right after sign-in: %d", add.status)
	}
	secret := strings.ReplaceAll(secretPattern.FindStringSubmatch(add.body)[1], " ", "")
	// ...and finished by someone holding the session 10 minutes later.
	f.clock.Add(10 * time.Minute)
	refusedBefore := f.countAudit(t, audit.CredentialRefused)
	res := b.post(t, "/account/totp", url.Values{"code": {f.codeFor(t, secret)}, "name": {"thief"}})
	if res.status != http.StatusForbidden || !strings.Contains(res.body, "fresh proof") {
		t.Errorf("adding a TOTP factor with a 10-minute-old proof: %d, want 403 asking for a fresh proof\n%s", res.status, res.body)
	}
	if res := b.postJSON(t, "/account/passkey/begin", map[string]any{}); res.status != http.StatusForbidden {
		t.Errorf("beginning a passkey registration with a 10-minute-old proof: %d, want 403", res.status)
	}
	only := f.credentials(t, u.ID)[0]
	if res := b.post(t, "/account/factors/"+only.ID+"/remove", url.Values{}); res.status != http.StatusForbidden {
		t.Errorf("removing a factor with a 10-minute-old proof: %d, want 403", res.status)
	}
	if n := len(f.credentials(t, u.ID)); n != 1 {
		t.Errorf("bob has %d factors after the refusals, want 1", n)
	}
	if n := f.countAudit(t, audit.CredentialRefused) - refusedBefore; n != 3 {
		t.Errorf("%d refusals audited, want 3", n)
	}
	if got := events.list(); len(got) != 0 {
		t.Errorf("notified %v for refused changes", got)
	}
	// The add page asks for a new proof.
	res = b.get(t, "/account/add")
	if loc := res.header.Get("Location"); res.status != http.StatusSeeOther || loc != "/signin?reauth=1&next=%2Faccount%2Fadd" {
		t.Fatalf("add page with an old proof: %d %q, want 303 to sign in again", res.status, loc)
	}
	if page := b.get(t, "/signin?reauth=1&next=%2Faccount%2Fadd"); page.status != http.StatusOK || !strings.Contains(page.body, "Prove who you are again") {
		t.Fatalf("the sign-in page for a fresh proof: %d", page.status)
	}
	res = b.post(t, "/signin/totp", url.Values{"username": {"bob"}, "code": {f.code(t, "bob")}, "next": {"/account/add"}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/account/add" {
		t.Fatalf("proving again: %d %s", res.status, res.header.Get("Location"))
	}
	f.clock.Add(4 * time.Minute) // within 5 minutes
	add = b.get(t, "/account/add")
	secret = strings.ReplaceAll(secretPattern.FindStringSubmatch(add.body)[1], " ", "")
	res = b.post(t, "/account/totp", url.Values{"code": {f.codeFor(t, secret)}, "name": {"tablet"}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("adding a TOTP factor within 5 minutes of the proof: %d\n%s", res.status, res.body)
	}
	if res := b.post(t, "/account/factors/"+only.ID+"/remove", url.Values{}); res.status != http.StatusSeeOther {
		t.Errorf("removing a factor within 5 minutes of the proof: %d", res.status)
	}
	want := []string{"factor.added bob totp account", "factor.removed bob totp account"}
	if got := events.list(); !slices.Equal(got, want) {
		t.Errorf("notified %q, want %q", got, want)
	}
}

// TestEnrollmentNotifiesAndIsSingleUse: the first factor, through a
// one-time link, needs no fresh step-up but is notified; the link works
// once.
func TestEnrollmentNotifiesAndIsSingleUse(t *testing.T) {
	f, events := newNotifiedFixture(t)
	_, token, err := account.New(f.st, f.clock.Now).Create(context.Background(), "newbie", "", []string{"approvers"}, false, "test")
	if err != nil {
		t.Fatal(err)
	}
	path := "/enroll/" + token
	b := f.browser(t)
	page := b.get(t, path)
	secret := strings.ReplaceAll(secretPattern.FindStringSubmatch(page.body)[1], " ", "")
	// A second tab of the same link, with its own set-up.
	b2 := f.browser(t)
	page2 := b2.get(t, path)
	secret2 := strings.ReplaceAll(secretPattern.FindStringSubmatch(page2.body)[1], " ", "")

	if res := b.post(t, path+"/totp", url.Values{"code": {f.codeFor(t, secret)}}); res.status != http.StatusSeeOther {
		t.Fatalf("enrolling: %d\n%s", res.status, res.body)
	}
	if res := b2.post(t, path+"/totp", url.Values{"code": {f.codeFor(t, secret2)}}); res.status != http.StatusGone {
		t.Errorf("enrolling again with a used link: %d, want 410", res.status)
	}
	u, _ := f.st.GetUserByName(context.Background(), "newbie")
	if n := len(f.credentials(t, u.ID)); n != 1 {
		t.Errorf("%d factors, want 1", n)
	}
	if got, want := events.list(), []string{"factor.added newbie totp enrollment"}; !slices.Equal(got, want) {
		t.Errorf("notified %q, want %q", got, want)
	}
}
