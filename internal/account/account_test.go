package account

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

func newManager(t *testing.T) (*Manager, store.Store, *time.Time) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	return New(st, func() time.Time { return now }), st, &now
}

func TestCreate(t *testing.T) {
	ctx := context.Background()
	m, st, now := newManager(t)
	u, secret, err := m.Create(ctx, "Alice", "alice@example.com", []string{"approvers", "sre", "approvers"}, false, "cli:root")
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "alice" || strings.Join(u.Groups, ",") != "approvers,sre" {
		t.Errorf("user = %+v, want a lower-case name and deduplicated groups", u)
	}
	e, err := st.GetEnrollment(ctx, EnrollmentHash(secret))
	if err != nil || e.UserID != u.ID || !e.ExpiresAt.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("enrollment = %+v, %v; want one for alice, 24 h", e, err)
	}
	if len(secret) < 40 {
		t.Errorf("enrollment secret %q is short", secret)
	}
	for _, tt := range []struct {
		name, user, email string
		groups            []string
		err               error
	}{
		{"fail/taken", "alice", "", nil, ErrTaken},
		{"fail/bad-name", "al ice", "", nil, ErrInvalid},
		{"fail/empty-name", "", "", nil, ErrInvalid},
		{"fail/bad-group", "bob", "", []string{"Ops Team"}, ErrInvalid},
		{"fail/bad-email", "bob", "not-an-email", nil, ErrInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := m.Create(ctx, tt.user, tt.email, tt.groups, false, "t"); !errors.Is(err, tt.err) {
				t.Errorf("Create(%q) = %v, want %v", tt.user, err, tt.err)
			}
		})
	}
}

func TestDisableSignsOut(t *testing.T) {
	ctx := context.Background()
	m, st, now := newManager(t)
	u, _, _ := m.Create(ctx, "alice", "", nil, false, "t")
	b, _, _ := m.Create(ctx, "bob", "", nil, false, "t")
	for _, s := range []*store.Session{{Hash: []byte("a1"), UserID: u.ID, CreatedAt: *now, LastSeenAt: *now}, {Hash: []byte("b1"), UserID: b.ID, CreatedAt: *now, LastSeenAt: *now}} {
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.SetDisabled(ctx, "alice", true, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetSession(ctx, []byte("a1")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice's session survived disabling: %v", err)
	}
	if _, err := st.GetSession(ctx, []byte("b1")); err != nil {
		t.Errorf("bob's session was lost: %v", err)
	}
	if _, err := m.Enroll(ctx, "alice", "t"); !errors.Is(err, ErrInvalid) {
		t.Errorf("a disabled user got an enrollment link: %v", err)
	}
	if err := m.SetDisabled(ctx, "nobody", true, "t"); !errors.Is(err, ErrNotFound) {
		t.Errorf("disabling a missing user: %v", err)
	}
}

func TestLinks(t *testing.T) {
	ctx := context.Background()
	m, st, _ := newManager(t)
	m.Create(ctx, "alice", "", nil, false, "t")
	m.Create(ctx, "bob", "", nil, false, "t")
	if _, err := m.Link(ctx, "alice", "github:alice", false, "t"); err != nil {
		t.Fatal(err)
	}
	if u, err := st.FindUserByLink(ctx, "github:alice"); err != nil || u.Name != "alice" {
		t.Fatalf("FindUserByLink = %v, %v", u, err)
	}
	if _, err := m.Link(ctx, "bob", "github:alice", false, "t"); !errors.Is(err, ErrTaken) {
		t.Errorf("linking alice's identity to bob: %v, want ErrTaken", err)
	}
	if _, err := m.Link(ctx, "bob", "myspace:bob", false, "t"); !errors.Is(err, ErrInvalid) {
		t.Errorf("an unknown identity kind: %v, want ErrInvalid", err)
	}
	if _, err := m.Link(ctx, "alice", "github:alice", true, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.FindUserByLink(ctx, "github:alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the removed link still finds alice: %v", err)
	}
}

// GitHub and GitLab logins ignore case, so links to them do too: github:Bob
// is alice's github:bob, and cannot be given to someone else.
func TestLinksFollowTheProvidersRule(t *testing.T) {
	ctx := context.Background()
	m, st, _ := newManager(t)
	m.Create(ctx, "alice", "", nil, false, "t")
	m.Create(ctx, "mallory", "", nil, false, "t")
	if _, err := m.Link(ctx, "alice", "github:Bob", false, "t"); err != nil {
		t.Fatal(err)
	}
	if u, err := st.FindUserByLink(ctx, "github:bob"); err != nil || u.Name != "alice" {
		t.Errorf("FindUserByLink(github:bob) after linking github:Bob = %v, %v; want alice", u, err)
	}
	if _, err := m.Link(ctx, "mallory", "github:BOB", false, "t"); !errors.Is(err, ErrTaken) {
		t.Errorf("linking github:BOB to mallory: %v, want ErrTaken (it is alice's github:bob)", err)
	}
	// An OpenID Connect subject is compared exactly.
	if _, err := m.Link(ctx, "mallory", "oidc:AbC", false, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.FindUserByLink(ctx, "oidc:abc"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("oidc:abc found the link oidc:AbC: %v", err)
	}
}

// A person cannot be named like a pipeline token: the token's checks would
// pass for theirs.
func TestCreateRefusesATokensName(t *testing.T) {
	ctx := context.Background()
	m, st, _ := newManager(t)
	if err := st.CreateToken(ctx, &store.Token{ID: "t1", Name: "deploy-bot", Hash: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Create(ctx, "Deploy-Bot", "", nil, false, "t"); !errors.Is(err, ErrTaken) {
		t.Errorf("Create(Deploy-Bot) with a token deploy-bot = %v, want ErrTaken", err)
	}
	if u, _, err := m.Create(ctx, "ｂｏｂ", "", nil, false, "t"); err != nil || u.Name != "bob" {
		t.Errorf("Create(full-width bob) = %v, %v; want bob", u, err)
	}
}

func TestEverythingIsAudited(t *testing.T) {
	ctx := context.Background()
	m, st, _ := newManager(t)
	m.Create(ctx, "alice", "", []string{"approvers"}, false, "cli:root")
	m.SetGroups(ctx, "alice", []string{"security"}, true, "cli:root")
	m.Link(ctx, "alice", "gitlab:alice", false, "cli:root")
	m.SetDisabled(ctx, "alice", true, "cli:root")
	events, err := st.ListAudit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.Verify(events); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	want := []string{EventUserCreated, EventEnrollmentCreated, EventUserGroups, EventUserLinked, EventUserDisabled}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Errorf("audit events = %v, want %v", types, want)
	}
}
