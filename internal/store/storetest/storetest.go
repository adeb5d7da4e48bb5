package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/store"
)

// Opener returns a new, empty store for one test, and closes it when the
// test ends (t.Cleanup). Tests call it from parallel subtests.
type Opener func(t *testing.T) store.Store

// Run runs the conformance suite against the stores open returns. Every
// subtest opens its own store and runs in parallel with the others.
func Run(t *testing.T, open Opener) {
	t.Run("checks", func(t *testing.T) { testChecks(t, open) })
	t.Run("pending-and-expired", func(t *testing.T) { testPendingAndExpired(t, open) })
	t.Run("approvals", func(t *testing.T) { testApprovals(t, open) })
	t.Run("tokens", func(t *testing.T) { testTokens(t, open) })
	t.Run("signing-keys", func(t *testing.T) { testSigningKeys(t, open) })
	t.Run("transactions", func(t *testing.T) { testTransactions(t, open) })
	t.Run("audit", func(t *testing.T) { testAudit(t, open) })
	t.Run("watch", func(t *testing.T) { testWatch(t, open) })
	t.Run("lifecycle", func(t *testing.T) { testLifecycle(t, open) })
	t.Run("users", func(t *testing.T) { testUsers(t, open) })
	t.Run("credentials", func(t *testing.T) { testCredentials(t, open) })
	t.Run("enrollments", func(t *testing.T) { testEnrollments(t, open) })
	t.Run("sessions", func(t *testing.T) { testSessions(t, open) })
	t.Run("check-changes", func(t *testing.T) { testCheckChanges(t, open) })
	t.Run("list-checks", func(t *testing.T) { testListChecks(t, open) })
	t.Run("nonces", func(t *testing.T) { testNonces(t, open) })
	t.Run("settings", func(t *testing.T) { testSettings(t, open) })
	t.Run("audit-checkpoints", func(t *testing.T) { testCheckpoints(t, open) })
	t.Run("ceremonies", func(t *testing.T) { testCeremonies(t, open) })
	t.Run("grant-approvals", func(t *testing.T) { testGrantApprovals(t, open) })
	t.Run("secrets", func(t *testing.T) { testSecrets(t, open) })
	t.Run("check-history", func(t *testing.T) { testCheckHistory(t, open) })
	t.Run("break-glass", func(t *testing.T) { testBreakGlass(t, open) })
	t.Run("run-tasks", func(t *testing.T) { testRunTasks(t, open) })
	t.Run("github-deliveries", func(t *testing.T) { testGitHubDeliveries(t, open) })
	t.Run("checks-of-run", func(t *testing.T) { testChecksOfRun(t, open) })
}

// What the suite holds every backend to, besides each method's contract:
//   - times come back in UTC, truncated to the microsecond; zero stays zero;
//   - empty maps, slices and JSON come back nil, and JSON comes back byte
//     for byte as it went in;
//   - OutcomeExitCode keeps nil and 0 apart;
//   - lists are oldest first (CreatedAt, then ID), a zero CreatedAt first;
//     but ListChecks is newest first (CreatedAt, then ID, both descending),
//     a zero CreatedAt last;
//   - a uint32 keeps all its 32 bits;
//   - a limit that is not positive is an error.

// cmpOpts compares times by instant and location, so a time that comes back
// in another zone (or with nanoseconds) is a difference.
func cmpOpts() cmp.Options {
	return cmp.Options{cmp.Comparer(func(a, b time.Time) bool {
		return a.Equal(b) && a.Location() == b.Location()
	})}
}

// stored is t as every store keeps it: UTC, truncated to the microsecond.
func stored(t time.Time) time.Time {
	t = t.Truncate(time.Microsecond)
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// base is a time with nanoseconds, in a zone other than UTC.
var base = time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.FixedZone("CET", 3600))

// at is base plus d.
func at(d time.Duration) time.Time { return base.Add(d) }

// fill sets every exported field of the struct v points to a non-zero value
// that depends on seed and the field, so that a field a backend forgets to
// store or read shows up as a difference. It fails the test on a field type
// it does not know: teach it when a record grows one.
func fill(t *testing.T, v any, seed int) {
	t.Helper()
	rv := reflect.ValueOf(v).Elem()
	for i := range rv.NumField() {
		sf := rv.Type().Field(i)
		if !sf.IsExported() {
			continue
		}
		f := rv.Field(i)
		name := fmt.Sprintf("%s-%d", sf.Name, seed)
		switch p := f.Addr().Interface().(type) {
		case *time.Time:
			*p = at(time.Duration(seed)*time.Hour + time.Duration(i)*time.Minute)
		case *json.RawMessage:
			// Spaces, key order and number forms a re-encoding would change.
			*p = json.RawMessage(fmt.Sprintf(`{"field": %q,  "z": 1.50, "a": [1e2, -0, null], "seed":%d}`, sf.Name, seed))
		case *map[string]string:
			*p = map[string]string{"field": name, "seed": fmt.Sprint(seed)}
		case *[]string:
			*p = []string{name, fmt.Sprint(seed)}
		case *[]byte:
			*p = []byte(name)
		case **int:
			n := seed*100 + i
			*p = &n
		default:
			switch f.Kind() {
			case reflect.String:
				f.SetString(name)
			case reflect.Int, reflect.Int64:
				f.SetInt(int64(seed*100 + i))
			case reflect.Uint32:
				// With the high bit set, so that a backend storing it in a
				// signed integer of its size shows.
				f.SetUint(1<<31 + uint64(seed*100+i))
			case reflect.Bool:
				f.SetBool(true)
			default:
				t.Fatalf("fill: field %s of %T has type %s, which the suite does not know: teach fill about it", sf.Name, v, sf.Type)
			}
		}
	}
}

// normalized returns a copy of the struct v points to with every time
// field as the store keeps it.
func normalized[T any](v *T) *T {
	c := *v
	rv := reflect.ValueOf(&c).Elem()
	for i := range rv.NumField() {
		if !rv.Type().Field(i).IsExported() {
			continue
		}
		if p, ok := rv.Field(i).Addr().Interface().(*time.Time); ok {
			*p = stored(*p)
		}
	}
	return &c
}

func ptr[T any](v T) *T { return &v }

// errAny, as the error a case wants, accepts any error.
var errAny = errors.New("any error")

// matches reports whether err is what a case wants: nil for nil, any
// error for errAny, else errors.Is.
func matches(err, want error) bool {
	if want == errAny {
		return err != nil
	}
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}

// concurrently runs fn(0) to fn(n-1), each in its own goroutine, all
// released at once, and returns their errors by i.
func concurrently(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// ids returns the IDs of records, in order.
func ids[T any](records []*T, id func(*T) string) []string {
	out := []string{}
	for _, r := range records {
		out = append(out, id(r))
	}
	return out
}

// emptyAsNil lets a list with no elements be nil or empty: callers range
// over lists, so the suite does not hold backends to either.
func emptyAsNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}
