package totp

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"log/slog"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/store"
)

// AAL is the assurance level a verified TOTP code reaches.
const AAL = 2

// AMR is the RFC 8176 authentication method reference of a TOTP code.
var AMR = []string{"otp"}

const (
	// Digits is the length of a code.
	Digits = 6
	// Period is the length of a time step.
	Period = 30 * time.Second
	// Skew is how many steps before and after the current one are accepted.
	Skew = 1
	// MaxFailures is how many wrong codes in a row, for one name from one
	// client address, slow that address down (Throttle).
	MaxFailures = 5
	// PendingTTL is how long an enrollment may wait for its first code.
	PendingTTL = 15 * time.Minute

	seedSize  = 20 // 160 bits, the HMAC-SHA1 block-friendly size of RFC 4226
	qrSize    = 200
	firstLock = time.Minute
	maxLock   = time.Hour
)

var (
	// ErrInvalid is returned for a wrong or malformed code.
	ErrInvalid = errors.New("totp: invalid code")
	// ErrReused is returned for a right code of a step already used: each
	// code is accepted once, and never after a later one.
	ErrReused = errors.New("totp: code already used")
	// ErrLocked: the client address sent too many wrong codes for this name
	// (Throttle) and must wait before it tries again.
	ErrLocked = errors.New("totp: factor locked")
	// ErrExpired is returned when an enrollment waited longer than PendingTTL.
	ErrExpired = errors.New("totp: enrollment expired")
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// TOTP enrolls and verifies TOTP factors. It is safe for concurrent use.
type TOTP struct {
	master *keys.Master
	issuer string
	now    func() time.Time
}

// New returns a TOTP whose QR codes name issuer (shown by authenticator apps
// above the account) and whose seeds are sealed under master.
func New(master *keys.Master, issuer string, now func() time.Time) *TOTP {
	return &TOTP{master: master, issuer: issuer, now: now}
}

// Pending is an enrollment shown to a person and not yet confirmed. It holds
// the seed: URL, PNG and DataURI all reveal it, so they go to that person's
// page only. Pending never prints or logs them.
type Pending struct {
	Account string
	// URL is the otpauth:// key URI (for "can't scan? enter this").
	URL string
	// PNG is the QR code of URL, 200×200.
	PNG []byte
	// DataURI is PNG as a data:image/png;base64 URI, for an <img src>.
	DataURI string

	seed    []byte
	created time.Time
}

// Format keeps the seed out of every fmt verb.
func (p Pending) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "totp.Pending{Account: %q, [redacted]}", p.Account)
}

// LogValue keeps the seed out of structured logs.
func (p Pending) LogValue() slog.Value {
	return slog.GroupValue(slog.String("account", p.Account), slog.String("seed", "[redacted]"))
}

// Begin starts an enrollment for account (the name shown in the
// authenticator app) with a new random seed. Nothing is saved: the caller
// keeps the Pending (SealPending) until Confirm.
func (t *TOTP) Begin(account string) (*Pending, error) {
	seed := make([]byte, seedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("generating totp seed: %w", err)
	}
	return t.pending(account, seed, t.now())
}

func (t *TOTP) pending(account string, seed []byte, created time.Time) (*Pending, error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      t.issuer,
		AccountName: account,
		Period:      uint(Period / time.Second),
		Secret:      seed,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return nil, fmt.Errorf("making totp key for %q: %w", account, err)
	}
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return nil, fmt.Errorf("drawing totp qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encoding totp qr code: %w", err)
	}
	return &Pending{
		Account: account,
		URL:     key.URL(),
		PNG:     buf.Bytes(),
		DataURI: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()),
		seed:    seed,
		created: created,
	}, nil
}

type sealedPending struct {
	Account string    `json:"account"`
	Seed    []byte    `json:"seed"`
	Created time.Time `json:"created"`
}

func pendingAAD(userID string) []byte { return []byte("stepgate totp pending v1\n" + userID) }

// SealPending seals p for the user enrolling it, so the caller can keep it
// anywhere short-lived (another replica may get the confirming request).
// Only OpenPending with the same userID opens it.
func (t *TOTP) SealPending(p *Pending, userID string) ([]byte, error) {
	b, err := json.Marshal(sealedPending{Account: p.Account, Seed: p.seed, Created: p.created})
	if err != nil {
		return nil, fmt.Errorf("encoding totp enrollment: %w", err)
	}
	defer clear(b)
	return t.master.Seal(b, pendingAAD(userID))
}

// OpenPending reverses SealPending. It refuses an enrollment older than
// PendingTTL (ErrExpired) or sealed for another user.
func (t *TOTP) OpenPending(sealed []byte, userID string) (*Pending, error) {
	b, err := t.master.Open(sealed, pendingAAD(userID))
	if err != nil {
		return nil, fmt.Errorf("opening totp enrollment: %w", err)
	}
	defer clear(b)
	var sp sealedPending
	if err := json.Unmarshal(b, &sp); err != nil {
		return nil, fmt.Errorf("decoding totp enrollment: %w", err)
	}
	if t.now().Sub(sp.Created) > PendingTTL {
		return nil, ErrExpired
	}
	return t.pending(sp.Account, sp.Seed, sp.Created)
}

// data is the public part of a TOTP credential (store.Credential.Data).
type data struct {
	Issuer    string `json:"issuer"`
	Account   string `json:"account"`
	Algorithm string `json:"algorithm"`
	Digits    int    `json:"digits"`
	Period    int    `json:"period"`
}

// Confirm saves nothing either: it checks that code is valid for p's seed
// and returns the credential to add, with the seed sealed and LastStep set to
// the step of code, so that the code that confirmed enrollment cannot also
// approve something.
func (t *TOTP) Confirm(p *Pending, code, userID, name string) (*store.Credential, error) {
	if p == nil || len(p.seed) == 0 {
		return nil, errors.New("totp: no enrollment to confirm")
	}
	now := t.now()
	if now.Sub(p.created) > PendingTTL {
		return nil, ErrExpired
	}
	if !wellFormed(code) {
		return nil, ErrInvalid
	}
	step, _, err := match(p.seed, code, now, -1)
	if err != nil {
		return nil, err
	}
	if step < 0 {
		return nil, ErrInvalid
	}
	id := "totp_" + rand.Text()
	sealed, err := t.master.Seal(p.seed, []byte(id))
	if err != nil {
		return nil, fmt.Errorf("sealing totp seed: %w", err)
	}
	pub, err := json.Marshal(data{
		Issuer:    t.issuer,
		Account:   p.Account,
		Algorithm: "SHA1",
		Digits:    Digits,
		Period:    int(Period / time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("encoding totp credential: %w", err)
	}
	return &store.Credential{
		ID:           id,
		UserID:       userID,
		Kind:         store.KindTOTP,
		Name:         name,
		Data:         pub,
		SealedSecret: sealed,
		LastStep:     step,
		CreatedAt:    now,
	}, nil
}

// Verify checks code against c and updates c in place: the caller read c
// with GetCredentialForUpdate and must write it back in the same transaction
// whatever the result, since failures count too.
//
//   - a right code for a step after c.LastStep: nil; Failures reset,
//     LastStep and LastUsedAt set;
//   - a right code for c.LastStep or an earlier step: ErrReused (not counted
//     as a failure: it is no guess, and it cannot unlock anything);
//   - anything else, malformed codes included: ErrInvalid, Failures + 1.
//
// Verify never locks c: guessing is slowed per person and client address
// by a Throttle, which the caller consults first.
func (t *TOTP) Verify(c *store.Credential, code string) error {
	if c.Kind != store.KindTOTP {
		return fmt.Errorf("totp: credential %s is a %s factor", c.ID, c.Kind)
	}
	now := t.now()
	if !wellFormed(code) {
		return t.fail(c, now)
	}
	seed, err := t.master.Open(c.SealedSecret, []byte(c.ID))
	if err != nil {
		return fmt.Errorf("opening totp seed of %s: %w", c.ID, err)
	}
	step, reused, err := match(seed, code, now, c.LastStep)
	clear(seed)
	if err != nil {
		return err
	}
	switch {
	case step >= 0:
		c.Failures = 0
		c.LockedUntil = time.Time{} // a lock of older versions
		c.LastStep = step
		c.LastUsedAt = now
		return nil
	case reused:
		return ErrReused
	default:
		return t.fail(c, now)
	}
}

func (t *TOTP) fail(c *store.Credential, now time.Time) error {
	// Counted for the audit log and alerting; the back-off is per person
	// and client address (Throttle), never a lock of the factor for
	// everyone.
	c.Failures++
	return ErrInvalid
}

// lockFor is the back-off after the given number of failures in a row
// (at least MaxFailures): 1 min, 2, 4, ... capped at 1 h.
func lockFor(failures int) time.Duration {
	n := failures - MaxFailures
	if n >= 6 { // 2^6 min > 1 h; also keeps the shift small
		return maxLock
	}
	return min(firstLock<<n, maxLock)
}

func wellFormed(code string) bool {
	if len(code) != Digits {
		return false
	}
	for i := range len(code) {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// match compares code, in constant time, with the codes of the steps around
// now. It returns the latest matching step after last (or -1), and whether
// code matched a step at or before last.
func match(seed []byte, code string, now time.Time, last int64) (step int64, reused bool, err error) {
	secret := b32.EncodeToString(seed)
	current := now.Unix() / int64(Period/time.Second)
	step = -1
	for s := current - Skew; s <= current+Skew; s++ {
		want, err := totp.GenerateCodeCustom(secret, stepTime(s), totp.ValidateOpts{
			Period:    uint(Period / time.Second),
			Digits:    otp.DigitsSix,
			Algorithm: otp.AlgorithmSHA1,
		})
		if err != nil {
			return -1, false, fmt.Errorf("computing totp code: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
			continue
		}
		if s > last {
			step = s // steps ascend: the latest match wins
		} else {
			reused = true
		}
	}
	return step, reused, nil
}

func stepTime(step int64) time.Time { return time.Unix(step*int64(Period/time.Second), 0) }
