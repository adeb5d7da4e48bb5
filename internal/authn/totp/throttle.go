package totp

import (
	"sync"
	"time"
)

// Throttle slows down the guessing of codes per person and client
// address, instead of locking a person's factor for everyone (which would
// let anyone who knows an approver's name lock them out): after
// MaxFailures wrong codes in a row for one name from one address, that
// address waits 1 min before its next try for that name, doubling per
// further failure up to 1 h; an address that fails AddressMaxFailures
// times in a row across names waits the same way for every name. A right
// code clears the pair. Unknown names are throttled exactly like real
// ones, so the answers do not tell which names exist.
//
// The state is in memory, per process: behind a load balancer each
// server counts on its own.
type Throttle struct {
	now func() time.Time

	mu sync.Mutex
	m  map[string]*backoff
}

// AddressMaxFailures is how many wrong codes in a row, for any names, an
// address may send before it is slowed down for every name.
const AddressMaxFailures = 4 * MaxFailures

// maxThrottled bounds the throttle's memory; past it, the entries that
// are not slowing anyone down are dropped.
const maxThrottled = 100_000

type backoff struct {
	failures int
	until    time.Time
	last     time.Time
}

// NewThrottle returns an empty throttle.
func NewThrottle(now func() time.Time) *Throttle {
	return &Throttle{now: now, m: map[string]*backoff{}}
}

func pairKey(name, addr string) string { return "p\x00" + name + "\x00" + addr }
func addrKey(addr string) string       { return "a\x00" + addr }

// Wait returns how long addr must wait before trying a code for name; 0
// when it may try now.
func (t *Throttle) Wait(name, addr string) time.Duration {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	for _, k := range []string{pairKey(name, addr), addrKey(addr)} {
		if b := t.m[k]; b != nil && now.Before(b.until) {
			wait = max(wait, b.until.Sub(now))
		}
	}
	return wait
}

// Fail counts a wrong code for name from addr.
func (t *Throttle) Fail(name, addr string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxThrottled {
		t.prune(now)
	}
	t.bump(pairKey(name, addr), MaxFailures, now)
	t.bump(addrKey(addr), AddressMaxFailures, now)
}

func (t *Throttle) bump(k string, threshold int, now time.Time) {
	b := t.m[k]
	if b == nil {
		b = &backoff{}
		t.m[k] = b
	}
	b.failures++
	b.last = now
	if b.failures >= threshold {
		b.until = now.Add(lockFor(b.failures - threshold + MaxFailures))
	}
}

// Succeed clears name's count from addr (and addr's, which just proved
// it is no guesser).
func (t *Throttle) Succeed(name, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, pairKey(name, addr))
	delete(t.m, addrKey(addr))
}

// prune drops the entries that slow nobody down and have not failed for
// an hour.
func (t *Throttle) prune(now time.Time) {
	for k, b := range t.m {
		if !now.Before(b.until) && now.Sub(b.last) > maxLock {
			delete(t.m, k)
		}
	}
}
