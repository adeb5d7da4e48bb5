package gate

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
)

// A waiting pipeline is woken by the notification its check's approval
// sends through the store, not by the periodic re-read: the re-read is
// turned off here, so only the notification path can end the wait before
// its timeout.
func TestWaitIsWokenByTheNotification(t *testing.T) {
	f := newFixture(t)
	f.svc.cfg.RecheckInterval = -1
	f.approvers(t, "alice")
	id, _ := f.create(t, "prod-iam.plan.json", "billing-prod")
	ready := make(chan struct{})
	var once sync.Once
	f.svc.waiting = func(string) { once.Do(func() { close(ready) }) }
	hub := NewHub()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = hub.Run(ctx, f.st) }()

	got := make(chan *api.Check, 1)
	go func() {
		v, err := f.svc.Wait(ctx, hub, f.caller, id, MaxWait)
		if err != nil {
			t.Error(err)
		}
		got <- v
	}()
	<-ready // the waiter has read the check as pending and waits
	start := time.Now()
	if _, err := f.svc.Record(ctx, id, &Proof{Subject: "alice", Groups: []string{"approvers"}, Approved: true, AAL: 3, AMR: []string{"hwk", "user"}, AuthTime: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if v == nil || v.State != "approved" {
			t.Fatalf("Wait = %+v, want the approved check", v)
		}
		t.Logf("woken %v after the approval", time.Since(start))
	case <-time.After(MaxWait / 2):
		t.Fatal("the waiter was not woken by the approval's notification")
	}
}
