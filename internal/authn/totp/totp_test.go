package totp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/store"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTest(t *testing.T) (*TOTP, *clock, *keys.Master) {
	t.Helper()
	m, err := keys.NewMaster(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatalf("NewMaster() = %v", err)
	}
	// Mid-step, so that codes of the previous and next steps are in the window.
	c := &clock{t: time.Date(2026, 3, 4, 10, 0, 15, 0, time.UTC)}
	return New(m, "stepgate test", c.now), c, m
}

// code computes an RFC 6238 code independently of the library under test.
func code(seed []byte, at time.Time) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(at.Unix()/30))
	mac := hmac.New(sha1.New, seed)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1_000_000)
}

func step(at time.Time) int64 { return at.Unix() / 30 }

// enroll runs Begin and Confirm and returns the credential and its seed.
func enroll(t *testing.T, tt *TOTP, c *clock) (*store.Credential, []byte) {
	t.Helper()
	p, err := tt.Begin("alice")
	if err != nil {
		t.Fatalf("Begin() = %v", err)
	}
	cred, err := tt.Confirm(p, code(p.seed, c.now()), "u1", "phone")
	if err != nil {
		t.Fatalf("Confirm() = %v", err)
	}
	return cred, p.seed
}

func TestRFC6238Vectors(t *testing.T) {
	// RFC 6238 appendix B, SHA1, seed "12345678901234567890", last 6 digits.
	seed := []byte("12345678901234567890")
	for _, tc := range []struct {
		unix int64
		code string
	}{
		{59, "287082"},
		{1111111109, "081804"},
		{1111111111, "050471"},
		{1234567890, "005924"},
		{2000000000, "279037"},
	} {
		at := time.Unix(tc.unix, 0)
		got, reused, err := match(seed, tc.code, at, -1)
		if err != nil || reused || got != step(at) {
			t.Errorf("match(%s, %d) = %d, %v, %v; want %d", tc.code, tc.unix, got, reused, err, step(at))
		}
		if c := code(seed, at); c != tc.code {
			t.Errorf("test helper code(%d) = %s, want %s", tc.unix, c, tc.code)
		}
	}
}

func TestBeginConfirm(t *testing.T) {
	tt, c, m := newTest(t)
	p, err := tt.Begin("alice")
	if err != nil {
		t.Fatalf("Begin() = %v", err)
	}
	u, err := url.Parse(p.URL)
	if err != nil {
		t.Fatalf("url.Parse(%q) = %v", p.URL, err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || q.Get("issuer") != "stepgate test" ||
		q.Get("secret") != b32.EncodeToString(p.seed) || q.Get("digits") != "6" ||
		q.Get("period") != "30" || q.Get("algorithm") != "SHA1" {
		t.Errorf("Begin().URL = %s, want an otpauth://totp URL with the seed, issuer, SHA1, 6 digits, 30 s", p.URL)
	}
	if len(p.seed) != 20 {
		t.Errorf("len(seed) = %d, want 20", len(p.seed))
	}
	img, err := png.Decode(bytes.NewReader(p.PNG))
	if err != nil {
		t.Fatalf("png.Decode(Begin().PNG) = %v", err)
	}
	if b := img.Bounds(); b.Dx() != 200 || b.Dy() != 200 {
		t.Errorf("QR code is %v, want 200×200", b)
	}
	if want := "data:image/png;base64," + base64.StdEncoding.EncodeToString(p.PNG); p.DataURI != want {
		t.Errorf("Begin().DataURI does not encode PNG")
	}

	wrong := wrongCode(p.seed, c.now())
	if _, err := tt.Confirm(p, wrong, "u1", "phone"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Confirm(wrong code) = %v, want ErrInvalid", err)
	}
	if _, err := tt.Confirm(p, "12345", "u1", "phone"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Confirm(5 digits) = %v, want ErrInvalid", err)
	}

	good := code(p.seed, c.now())
	cred, err := tt.Confirm(p, good, "u1", "phone")
	if err != nil {
		t.Fatalf("Confirm(right code) = %v", err)
	}
	want := &store.Credential{
		ID:        cred.ID,
		UserID:    "u1",
		Kind:      store.KindTOTP,
		Name:      "phone",
		LastStep:  step(c.now()),
		CreatedAt: c.now(),
	}
	got := *cred
	got.Data, got.SealedSecret = nil, nil
	if diff := cmp.Diff(want, &got); diff != "" {
		t.Errorf("Confirm() mismatch (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(cred.ID, "totp_") || len(cred.ID) < 20 {
		t.Errorf("Confirm().ID = %q, want a random totp_ id", cred.ID)
	}
	var d data
	if err := json.Unmarshal(cred.Data, &d); err != nil {
		t.Fatalf("json.Unmarshal(Data) = %v", err)
	}
	if diff := cmp.Diff(data{Issuer: "stepgate test", Account: "alice", Algorithm: "SHA1", Digits: 6, Period: 30}, d); diff != "" {
		t.Errorf("Confirm().Data mismatch (-want +got):\n%s", diff)
	}
	if bytes.Contains(cred.Data, p.seed) || strings.Contains(string(cred.Data), b32.EncodeToString(p.seed)) {
		t.Error("Confirm().Data contains the seed")
	}

	// The seed is sealed: not the raw seed, opens only with the credential id.
	if bytes.Equal(cred.SealedSecret, p.seed) || bytes.Contains(cred.SealedSecret, p.seed) {
		t.Error("SealedSecret contains the raw seed")
	}
	opened, err := m.Open(cred.SealedSecret, []byte(cred.ID))
	if err != nil {
		t.Fatalf("Open(SealedSecret, id) = %v", err)
	}
	if !bytes.Equal(opened, p.seed) {
		t.Error("Open(SealedSecret, id) is not the seed")
	}
	if _, err := m.Open(cred.SealedSecret, []byte("totp_other")); !errors.Is(err, keys.ErrDecrypt) {
		t.Errorf("Open(SealedSecret, other id) = %v, want ErrDecrypt", err)
	}

	// The code that confirmed enrollment cannot be used again.
	if err := tt.Verify(cred, good); !errors.Is(err, ErrReused) {
		t.Errorf("Verify(confirming code) = %v, want ErrReused", err)
	}
}

func TestConfirmExpired(t *testing.T) {
	tt, c, _ := newTest(t)
	p, err := tt.Begin("alice")
	if err != nil {
		t.Fatalf("Begin() = %v", err)
	}
	c.advance(PendingTTL + time.Second)
	if _, err := tt.Confirm(p, code(p.seed, c.now()), "u1", "phone"); !errors.Is(err, ErrExpired) {
		t.Errorf("Confirm(after %v) = %v, want ErrExpired", PendingTTL, err)
	}
	if _, err := tt.Confirm(nil, "123456", "u1", "phone"); err == nil {
		t.Error("Confirm(nil) = nil, want an error")
	}
}

func TestPendingSeal(t *testing.T) {
	tt, c, _ := newTest(t)
	p, err := tt.Begin("alice")
	if err != nil {
		t.Fatalf("Begin() = %v", err)
	}
	sealed, err := tt.SealPending(p, "u1")
	if err != nil {
		t.Fatalf("SealPending() = %v", err)
	}
	if bytes.Contains(sealed, p.seed) || bytes.Contains(sealed, []byte(b32.EncodeToString(p.seed))) {
		t.Error("SealPending() output contains the seed")
	}
	if _, err := tt.OpenPending(sealed, "u2"); !errors.Is(err, keys.ErrDecrypt) {
		t.Errorf("OpenPending(another user) = %v, want ErrDecrypt", err)
	}
	c.advance(time.Minute)
	back, err := tt.OpenPending(sealed, "u1")
	if err != nil {
		t.Fatalf("OpenPending() = %v", err)
	}
	if back.URL != p.URL || !bytes.Equal(back.PNG, p.PNG) || back.Account != "alice" {
		t.Error("OpenPending() differs from what was sealed")
	}
	if _, err := tt.Confirm(back, code(p.seed, c.now()), "u1", "phone"); err != nil {
		t.Errorf("Confirm(OpenPending()) = %v", err)
	}
	c.advance(PendingTTL)
	if _, err := tt.OpenPending(sealed, "u1"); !errors.Is(err, ErrExpired) {
		t.Errorf("OpenPending(after %v) = %v, want ErrExpired", PendingTTL, err)
	}
}

func TestPendingRedacted(t *testing.T) {
	tt, _, _ := newTest(t)
	p, err := tt.Begin("alice")
	if err != nil {
		t.Fatalf("Begin() = %v", err)
	}
	secret := b32.EncodeToString(p.seed)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("enrolling", "pending", p, "value", *p)
	for _, out := range []string{
		fmt.Sprintf("%v %+v %#v %s %x %q", p, p, p, p, p, p),
		fmt.Sprintf("%v %+v %#v %s %x %q", *p, *p, *p, *p, *p, *p),
		logged.String(),
	} {
		if strings.Contains(out, secret) || strings.Contains(out, "otpauth") || strings.Contains(out, "base64") {
			t.Errorf("Pending printed its seed: %s", out)
		}
		if !strings.Contains(out, "alice") {
			t.Errorf("Pending printed without its account: %s", out)
		}
	}
}

// wrongCode returns a well-formed code that matches none of the steps around at.
func wrongCode(seed []byte, at time.Time) string {
	for i := 0; ; i++ {
		c := fmt.Sprintf("%06d", (i*7919)%1_000_000)
		if c != code(seed, at.Add(-30*time.Second)) && c != code(seed, at) && c != code(seed, at.Add(30*time.Second)) {
			return c
		}
	}
}

func TestVerify(t *testing.T) {
	t.Run("ok", func(t *testing.T) {
		tt, c, _ := newTest(t)
		cred, seed := enroll(t, tt, c)
		c.advance(30 * time.Second)
		cred.Failures = 3
		if err := tt.Verify(cred, code(seed, c.now())); err != nil {
			t.Fatalf("Verify(code of the next step) = %v", err)
		}
		if cred.LastStep != step(c.now()) || cred.Failures != 0 || !cred.LastUsedAt.Equal(c.now()) {
			t.Errorf("after Verify: LastStep %d, Failures %d, LastUsedAt %v; want %d, 0, %v",
				cred.LastStep, cred.Failures, cred.LastUsedAt, step(c.now()), c.now())
		}
	})
	t.Run("ok/skew", func(t *testing.T) {
		tt, c, _ := newTest(t)
		cred, seed := enroll(t, tt, c)
		c.advance(2 * time.Minute)
		if err := tt.Verify(cred, code(seed, c.now().Add(-30*time.Second))); err != nil {
			t.Errorf("Verify(code of the previous step) = %v", err)
		}
		if err := tt.Verify(cred, code(seed, c.now().Add(30*time.Second))); err != nil {
			t.Errorf("Verify(code of the next step) = %v", err)
		}
	})
	t.Run("fail/same-code-twice", func(t *testing.T) {
		tt, c, _ := newTest(t)
		cred, seed := enroll(t, tt, c)
		c.advance(30 * time.Second)
		now := code(seed, c.now())
		if err := tt.Verify(cred, now); err != nil {
			t.Fatalf("Verify() = %v", err)
		}
		if err := tt.Verify(cred, now); !errors.Is(err, ErrReused) {
			t.Errorf("Verify(same code) = %v, want ErrReused", err)
		}
		if cred.Failures != 0 {
			t.Errorf("Failures = %d after a reused code, want 0", cred.Failures)
		}
	})
	t.Run("fail/previous-step-after-newer", func(t *testing.T) {
		tt, c, _ := newTest(t)
		cred, seed := enroll(t, tt, c)
		c.advance(2 * time.Minute)
		if err := tt.Verify(cred, code(seed, c.now().Add(30*time.Second))); err != nil {
			t.Fatalf("Verify(next step) = %v", err)
		}
		for _, d := range []time.Duration{0, -30 * time.Second} {
			if err := tt.Verify(cred, code(seed, c.now().Add(d))); !errors.Is(err, ErrReused) {
				t.Errorf("Verify(step %+v after a later one) = %v, want ErrReused", d, err)
			}
		}
	})
	t.Run("fail/outside-window", func(t *testing.T) {
		tt, c, _ := newTest(t)
		cred, seed := enroll(t, tt, c)
		c.advance(5 * time.Minute)
		for _, d := range []time.Duration{-60 * time.Second, 60 * time.Second} {
			at := c.now().Add(d)
			cc := code(seed, at)
			if cc == code(seed, c.now()) || cc == code(seed, c.now().Add(-30*time.Second)) || cc == code(seed, c.now().Add(30*time.Second)) {
				continue // a collision inside the window: nothing to test
			}
			if err := tt.Verify(cred, cc); !errors.Is(err, ErrInvalid) {
				t.Errorf("Verify(code %v away) = %v, want ErrInvalid", d, err)
			}
		}
	})
	t.Run("fail/wrong-kind", func(t *testing.T) {
		tt, _, _ := newTest(t)
		if err := tt.Verify(&store.Credential{ID: "x", Kind: store.KindWebAuthn}, "123456"); err == nil {
			t.Error("Verify(webauthn credential) = nil, want an error")
		}
	})
}

func TestVerifyMalformed(t *testing.T) {
	for _, in := range []string{"", "12345", "1234567", "12a456", " 123456", "123456 ", "12 456", "-12345", "１２３４５６", "123\x00456"} {
		t.Run(fmt.Sprintf("fail/%q", in), func(t *testing.T) {
			tt, c, _ := newTest(t)
			cred, _ := enroll(t, tt, c)
			cred.SealedSecret = []byte("not opened for a malformed code")
			if err := tt.Verify(cred, in); !errors.Is(err, ErrInvalid) {
				t.Errorf("Verify(%q) = %v, want ErrInvalid", in, err)
			}
			if cred.Failures != 1 {
				t.Errorf("Failures = %d after a malformed code, want 1", cred.Failures)
			}
		})
	}
}

// TestNoLockout: wrong codes are counted but never lock the factor: a
// lock would let anyone who knows a name lock its owner out (Throttle
// slows guessing per client address instead).
func TestNoLockout(t *testing.T) {
	tt, c, _ := newTest(t)
	cred, seed := enroll(t, tt, c)
	c.advance(time.Minute)
	for i := 1; i <= 3*MaxFailures; i++ {
		if err := tt.Verify(cred, wrongCode(seed, c.now())); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Verify(wrong #%d) = %v, want ErrInvalid", i, err)
		}
		if cred.Failures != i || !cred.LockedUntil.IsZero() {
			t.Fatalf("after %d failures: Failures %d, LockedUntil %v; want %d, zero", i, cred.Failures, cred.LockedUntil, i)
		}
	}
	if err := tt.Verify(cred, code(seed, c.now())); err != nil {
		t.Fatalf("Verify(right code after %d wrong ones) = %v, want nil", 3*MaxFailures, err)
	}
	if cred.Failures != 0 {
		t.Errorf("after success: Failures %d, want 0", cred.Failures)
	}
}

// TestThrottle: MaxFailures wrong codes for a name from an address slow
// that pair down (1 min, doubling to 1 h), not the same name from another
// address; an address failing across many names is slowed for all; a
// success clears the pair.
func TestThrottle(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	th := NewThrottle(c.now)
	for i := 1; i < MaxFailures; i++ {
		th.Fail("bob", "203.0.113.1")
		if w := th.Wait("bob", "203.0.113.1"); w != 0 {
			t.Fatalf("after %d failures: wait %v, want 0", i, w)
		}
	}
	for _, want := range []time.Duration{1, 2, 4, 8, 16, 32, 60, 60} {
		th.Fail("bob", "203.0.113.1")
		if got := th.Wait("bob", "203.0.113.1"); got != want*time.Minute {
			t.Fatalf("wait = %v, want %v", got, want*time.Minute)
		}
		if got := th.Wait("bob", "198.51.100.2"); got != 0 {
			t.Fatalf("another address waits %v for bob, want 0", got)
		}
		if got := th.Wait("alice", "203.0.113.1"); got != 0 {
			t.Fatalf("the address waits %v for another name, want 0", got)
		}
		c.advance(want * time.Minute)
	}
	th.Succeed("bob", "203.0.113.1")
	if got := th.Wait("bob", "203.0.113.1"); got != 0 {
		t.Errorf("after a success: wait %v, want 0", got)
	}
	for i := range AddressMaxFailures {
		th.Fail(fmt.Sprintf("name-%d", i), "192.0.2.9")
	}
	if got := th.Wait("anyone", "192.0.2.9"); got != time.Minute {
		t.Errorf("an address that failed for %d names waits %v for a new name, want 1m", AddressMaxFailures, got)
	}
}

func TestLockFor(t *testing.T) {
	for failures, want := range map[int]time.Duration{
		5: time.Minute, 6: 2 * time.Minute, 7: 4 * time.Minute, 10: 32 * time.Minute,
		11: time.Hour, 12: time.Hour, 100: time.Hour, 1 << 30: time.Hour,
	} {
		if got := lockFor(failures); got != want {
			t.Errorf("lockFor(%d) = %v, want %v", failures, got, want)
		}
	}
}
