package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/store"
)

func testGitHubDeliveries(t *testing.T, open Opener) {
	ctx := t.Context()
	st := open(t)
	d := &store.GitHubDelivery{
		ID: "d1", InstallationID: 1 << 40, Repository: "acme/infra", RunID: "4242", SHA: "abc",
		Environment: "production", CallbackURL: "https://api.github.com/repos/acme/infra/actions/runs/4242/deployment_protection_rule",
		State: store.DeliveryReceived, CreatedAt: at(0), UpdatedAt: at(0),
	}
	if err := st.AddGitHubDelivery(ctx, d); err != nil {
		t.Fatalf("AddGitHubDelivery = %v", err)
	}
	if err := st.AddGitHubDelivery(ctx, d); !errors.Is(err, store.ErrConflict) {
		t.Errorf("AddGitHubDelivery(again) = %v, want ErrConflict: a redelivery is recorded once", err)
	}
	if _, err := st.GetGitHubDelivery(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetGitHubDelivery(unknown) = %v, want ErrNotFound", err)
	}
	want := *d
	want.CreatedAt, want.UpdatedAt = stored(d.CreatedAt), stored(d.UpdatedAt)
	got, err := st.GetGitHubDelivery(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&want, got, cmpOpts()); diff != "" {
		t.Errorf("GetGitHubDelivery mismatch (-want +got):\n%s", diff)
	}
	later := &store.GitHubDelivery{ID: "d0", State: store.DeliveryReported, CreatedAt: at(time.Minute)}
	if err := st.AddGitHubDelivery(ctx, later); err != nil {
		t.Fatal(err)
	}
	open1, err := st.OpenGitHubDeliveries(ctx, 10)
	if err != nil || len(open1) != 2 || open1[0].ID != "d1" || open1[1].ID != "d0" {
		t.Fatalf("OpenGitHubDeliveries = %v, %v; want d1 then d0 (oldest first)", ids(open1, deliveryID), err)
	}
	d.State, d.Answer, d.Attempts, d.LastError, d.UpdatedAt = store.DeliveryAnswered, "approved", 2, "503", at(time.Hour)
	if err := st.UpdateGitHubDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, _ = st.GetGitHubDelivery(ctx, "d1")
	if got.State != store.DeliveryAnswered || got.Answer != "approved" || got.Attempts != 2 || got.LastError != "503" || !got.UpdatedAt.Equal(stored(at(time.Hour))) || !got.CreatedAt.Equal(stored(at(0))) {
		t.Errorf("after UpdateGitHubDelivery: %+v", got)
	}
	if open2, _ := st.OpenGitHubDeliveries(ctx, 10); len(open2) != 1 || open2[0].ID != "d0" {
		t.Errorf("OpenGitHubDeliveries after answering d1 = %v, want [d0]", ids(open2, deliveryID))
	}
	if _, err := st.OpenGitHubDeliveries(ctx, 0); err == nil {
		t.Error("OpenGitHubDeliveries(limit 0) = nil error")
	}
	if err := st.UpdateGitHubDelivery(ctx, &store.GitHubDelivery{ID: "nope", State: store.DeliveryReceived}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateGitHubDelivery(unknown) = %v, want ErrNotFound", err)
	}
}

func deliveryID(d *store.GitHubDelivery) string { return d.ID }

func checkID(c *store.Check) string { return c.ID }

// testChecksOfRun attacks the lookup the GitHub App answers from: only a
// check's verified pipeline counts, never what a request said of itself.
func testChecksOfRun(t *testing.T, open Opener) {
	ctx := t.Context()
	st := open(t)
	verified := func(repo, run string) map[string]string {
		return map[string]string{"system": "github-actions", "repository": repo, "run_id": run, "sha": "abc"}
	}
	for _, c := range []*store.Check{
		{ID: "c2", State: store.StateAllowed, Pipeline: verified("acme/infra", "7"), CreatedAt: at(2 * time.Second)},
		{ID: "c1", State: store.StatePending, Pipeline: verified("acme/infra", "7"), CreatedAt: at(time.Second)},
		{ID: "other-run", State: store.StateAllowed, Pipeline: verified("acme/infra", "8")},
		{ID: "other-repo", State: store.StateAllowed, Pipeline: verified("acme/web", "7")},
		{ID: "gitlab", State: store.StateAllowed, Pipeline: map[string]string{"system": "gitlab-ci", "repository": "acme/infra", "run_id": "7"}},
		// What a request said: an API token's check with pipeline.* claims.
		{ID: "unverified", State: store.StateAllowed, PipelineUnverified: verified("acme/infra", "7")},
	} {
		if err := st.CreateCheck(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.ChecksOfRun(ctx, "github-actions", "acme/infra", "7", 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"c1", "c2"}, ids(got, checkID)); diff != "" {
		t.Errorf("ChecksOfRun mismatch (-want +got):\n%s", diff)
	}
	if got, _ := st.ChecksOfRun(ctx, "github-actions", "acme/infra", "9", 10); len(got) != 0 {
		t.Errorf("ChecksOfRun(no such run) = %v, want none", ids(got, checkID))
	}
	if _, err := st.ChecksOfRun(ctx, "github-actions", "acme/infra", "7", 0); err == nil {
		t.Error("ChecksOfRun(limit 0) = nil error")
	}
}
