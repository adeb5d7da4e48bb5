package gate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
)

// Limits bound what one token may ask, so that a leaked or runaway token
// cannot flood the server nor push real checks out of people's sight.
type Limits struct {
	// PerMinute is how many checks a token may create per minute,
	// sustained; Burst how many at once. Negative: unlimited.
	PerMinute int
	Burst     int
	// MaxPending caps the pending checks of an API token. Negative:
	// unlimited.
	MaxPending int
}

// DefaultLimits are the limits of a Config that sets none.
var DefaultLimits = Limits{PerMinute: 120, Burst: 30, MaxPending: 20}

func (l Limits) withDefaults() Limits {
	if l.PerMinute == 0 {
		l.PerMinute = DefaultLimits.PerMinute
	}
	if l.Burst == 0 {
		l.Burst = DefaultLimits.Burst
	}
	if l.MaxPending == 0 {
		l.MaxPending = DefaultLimits.MaxPending
	}
	return l
}

// ErrLimited: the caller asked more than its limits allow; check with
// errors.Is, and errors.As a *LimitError for when to try again.
var ErrLimited = errors.New("too many requests")

// LimitError is a refusal for a limit, with when to try again.
type LimitError struct {
	RetryAfter time.Duration
	Reason     string
}

func (e *LimitError) Error() string        { return e.Reason }
func (e *LimitError) Is(target error) bool { return target == ErrLimited }

// pendingRetryAfter is what a caller over its pending cap is told: a
// check frees a place when people decide it or it expires.
const pendingRetryAfter = time.Minute

// auditEvery spaces the audited refusals of one token: the first refusal
// is audited at once, the next ones at most once per auditEvery, with how
// many were refused meanwhile (a flood must not become a flood of audit
// writes).
const auditEvery = time.Minute

// maxBuckets bounds the limiter's memory; past it, full buckets (tokens
// idle long enough to have their whole burst back) are dropped.
const maxBuckets = 10000

// limiter is a token bucket per caller, in this process.
type limiter struct {
	l   Limits
	now func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens    float64
	at        time.Time
	refused   int       // refusals since the last audited one
	auditedAt time.Time // of the last audited refusal
}

func newLimiter(l Limits, now func() time.Time) *limiter {
	return &limiter{l: l.withDefaults(), now: now, buckets: map[string]*bucket{}}
}

// take spends one request of key's bucket; when it is empty it returns how
// long until one is back.
func (lm *limiter) take(key string) (time.Duration, bool) {
	if lm.l.PerMinute < 0 {
		return 0, true
	}
	rate := float64(lm.l.PerMinute) / 60 // per second
	burst := float64(max(lm.l.Burst, 1))
	now := lm.now()
	lm.mu.Lock()
	defer lm.mu.Unlock()
	b := lm.buckets[key]
	if b == nil {
		if len(lm.buckets) >= maxBuckets {
			lm.prune(now, rate, burst)
		}
		b = &bucket{tokens: burst, at: now}
		lm.buckets[key] = b
	}
	b.tokens = math.Min(burst, b.tokens+now.Sub(b.at).Seconds()*rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	wait := time.Duration((1 - b.tokens) / rate * float64(time.Second))
	return max(wait.Round(time.Second), time.Second), false
}

func (lm *limiter) prune(now time.Time, rate, burst float64) {
	for k, b := range lm.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*rate >= burst {
			delete(lm.buckets, k)
		}
	}
}

// shouldAudit reports whether a refusal of key is to be audited now, and
// how many refusals it stands for.
func (lm *limiter) shouldAudit(key string) (int, bool) {
	now := lm.now()
	lm.mu.Lock()
	defer lm.mu.Unlock()
	b := lm.buckets[key]
	if b == nil {
		if len(lm.buckets) >= maxBuckets {
			// Keys whose last audit is a minute old are audited at once
			// anyway; past that, keys share one bucket rather than memory
			// growing with every new address.
			for k, old := range lm.buckets {
				if old.refused == 0 && now.Sub(old.auditedAt) >= auditEvery {
					delete(lm.buckets, k)
				}
			}
			if len(lm.buckets) >= maxBuckets {
				key = "*"
			}
		}
		if b = lm.buckets[key]; b == nil {
			b = &bucket{tokens: float64(max(lm.l.Burst, 1)), at: now}
			lm.buckets[key] = b
		}
	}
	b.refused++
	if !b.auditedAt.IsZero() && now.Sub(b.auditedAt) < auditEvery {
		return 0, false
	}
	n := b.refused
	b.refused, b.auditedAt = 0, now
	return n, true
}

// limitKey names the bucket of a caller: its API token, else its CI
// identity.
func limitKey(c *Caller) string {
	if c.TokenID != "" {
		return "token:" + c.TokenID
	}
	return "ci:" + c.Subject + ":" + c.Name
}

// admit refuses a request for a check when the caller is over its rate.
// The refusal is audited (at most once a minute per caller, with the
// count) and the error wraps ErrLimited.
func (s *Service) admit(ctx context.Context, caller *Caller) error {
	if s.limiter == nil {
		return nil
	}
	key := limitKey(caller)
	if wait, ok := s.limiter.take(key); !ok {
		return s.refuseLimited(ctx, caller, key, &LimitError{RetryAfter: wait,
			Reason: fmt.Sprintf("token %q creates checks faster than %d a minute (burst %d); try again in %v", caller.Name, s.limiter.l.PerMinute, s.limiter.l.Burst, wait)})
	}
	return nil
}

// admitPending refuses a new check (not one resumed) when the caller's
// token already has as many pending checks as it may, audited as admit.
func (s *Service) admitPending(ctx context.Context, caller *Caller) error {
	if s.limiter == nil || caller.TokenID == "" || s.limiter.l.MaxPending < 0 {
		return nil
	}
	key := limitKey(caller)
	n, err := s.st.CountPendingChecks(ctx, caller.TokenID)
	if err != nil {
		return fmt.Errorf("counting pending checks: %w", err)
	}
	if n >= s.limiter.l.MaxPending {
		return s.refuseLimited(ctx, caller, key, &LimitError{RetryAfter: pendingRetryAfter,
			Reason: fmt.Sprintf("token %q has %d checks waiting for people, the most it may have; a new one can be created once people decide one or it expires", caller.Name, n)})
	}
	return nil
}

func (s *Service) refuseLimited(ctx context.Context, caller *Caller, key string, e *LimitError) error {
	if n, ok := s.limiter.shouldAudit(key); ok {
		err := s.st.InTx(ctx, func(tx store.Tx) error {
			return tx.AppendAudit(ctx, s.event(s.now().UTC(), audit.CheckLimited, caller.Name, caller.TokenID, map[string]any{
				"reason": e.Reason, "status": 429, "refused": n, "retry_after_s": int(e.RetryAfter.Seconds()),
			}))
		})
		if err != nil {
			s.log.ErrorContext(ctx, "auditing a refusal failed", "action", "check.create", "actor", caller.Name, "err", err)
		}
	}
	return audited{e}
}
