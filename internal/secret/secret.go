package secret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/store"
)

// Errors callers tell apart with errors.Is.
var (
	// ErrInvalid: a name, workspace, description or value is not
	// acceptable; the message says what, never the value.
	ErrInvalid = errors.New("secret: invalid")
	// ErrNotFound: no live secret of that name, or not for that workspace.
	ErrNotFound = errors.New("secret: not found")
)

// Limits.
const (
	MaxNameLen        = 200
	MaxValueBytes     = 64 << 10
	maxDescriptionLen = 500
	maxWorkspaceLen   = 256
	// MaxPerCheck caps how many secrets one check may name.
	MaxPerCheck = 32
)

var (
	namePattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$`)
	externalPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}:[A-Za-z0-9._/=+@:-]+$`)
)

// External reports whether a name is that of a secret kept elsewhere:
// "vault:billing/db", "aws:billing/db". A check may name one so that its
// grant says so (the secrets claim), for a secret store that trusts
// stepgate's grants (docs/secrets.md); stepgate itself keeps and releases
// none of it.
func External(name string) bool { return strings.Contains(name, ":") }

// ValidRef reports what is wrong with a secret named by a check: the name
// of a secret kept in stepgate (ValidName), or of one kept elsewhere,
// "STORE:PATH" with a lower-case store name and a path of letters, digits
// and . _ / = + @ : -, at most 200 characters in all.
func ValidRef(name string) error {
	if !External(name) {
		return ValidName(name)
	}
	if len(name) > MaxNameLen || !externalPattern.MatchString(name) {
		return fmt.Errorf("%w: external secret %q: want STORE:PATH such as vault:billing/db, at most %d characters", ErrInvalid, clip(name), MaxNameLen)
	}
	return nil
}

// ValidName reports what is wrong with a secret's name: letters, digits,
// dot, dash and underscore in segments separated by single slashes
// ("billing/db-password"), at most 200 characters. Names travel in grants,
// Vault bound claims and AWS session tags, whose characters they fit.
func ValidName(name string) error {
	if len(name) > MaxNameLen || !namePattern.MatchString(name) {
		return fmt.Errorf("%w: secret name %q: want letters, digits, '.', '-' and '_' in segments separated by '/', at most %d characters", ErrInvalid, clip(name), MaxNameLen)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Store is what the service needs of the database (store.Store satisfies
// it); the functions it runs in a transaction get a store.Tx.
type Store interface {
	InTx(ctx context.Context, fn func(tx store.Tx) error) error
	GetSecret(ctx context.Context, name string) (*store.SecretVersion, error)
	ListSecrets(ctx context.Context) ([]*store.SecretVersion, error)
	SecretsSealedUnder(ctx context.Context, notKeyID string, limit int) ([]*store.SecretVersion, error)
}

// Reader is what looking secrets up for a check or a release needs, in or
// out of a transaction (store.Tx and store.Store satisfy it).
type Reader interface {
	GetSecret(ctx context.Context, name string) (*store.SecretVersion, error)
}

// Service writes and opens secrets. master seals new versions and, with
// its previous keys (keys.Master.WithPrevious), opens older ones.
type Service struct {
	st     Store
	master *keys.Master
	now    func() time.Time
}

// New returns the service. now is the clock; nil means time.Now.
func New(st Store, master *keys.Master, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, master: master, now: now}
}

// Put writes a new version of a secret, for the workspaces the glob
// matches, and audits it (never the value). A removed secret comes back
// with the next version number: versions are never reused.
func (s *Service) Put(ctx context.Context, name, workspace, description string, value []byte, actor string) (*store.SecretVersion, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if err := validWorkspace(workspace); err != nil {
		return nil, err
	}
	switch {
	case len(description) > maxDescriptionLen:
		return nil, fmt.Errorf("%w: description is longer than %d characters", ErrInvalid, maxDescriptionLen)
	case len(value) == 0:
		return nil, fmt.Errorf("%w: the value of %s is empty", ErrInvalid, name)
	case len(value) > MaxValueBytes:
		return nil, fmt.Errorf("%w: the value of %s is %d bytes, more than %d", ErrInvalid, name, len(value), MaxValueBytes)
	}
	now := s.now().UTC()
	var v *store.SecretVersion
	err := s.st.InTx(ctx, func(tx store.Tx) error {
		next := 1
		cur, err := tx.GetSecret(ctx, name)
		switch {
		case err == nil:
			next = cur.Version + 1
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		v = &store.SecretVersion{Name: name, Version: next, Workspace: workspace, Description: description, CreatedAt: now, CreatedBy: actor}
		if err := seal(s.master, v, value); err != nil {
			return err
		}
		if err := tx.AddSecretVersion(ctx, v); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, event(now, audit.SecretWritten, actor, "secret:"+name, map[string]any{
			"version": v.Version, "workspace": workspace, "key_id": v.KeyID, "description": description,
		}))
	})
	if err != nil {
		return nil, fmt.Errorf("putting secret %s: %w", name, err)
	}
	return v, nil
}

func validWorkspace(ws string) error {
	if ws == "" || len(ws) > maxWorkspaceLen {
		return fmt.Errorf("%w: --workspace is required: the glob of the workspaces whose checks may read the secret (at most %d characters)", ErrInvalid, maxWorkspaceLen)
	}
	if _, err := path.Match(ws, ""); err != nil {
		return fmt.Errorf("%w: workspace glob %q: %w", ErrInvalid, clip(ws), err)
	}
	return nil
}

// List returns the newest version of every secret, removed ones included
// (Deleted), without their sealed parts.
func (s *Service) List(ctx context.Context) ([]*store.SecretVersion, error) {
	all, err := s.st.ListSecrets(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing secrets: %w", err)
	}
	for _, v := range all {
		v.SealedKey, v.SealedValue = nil, nil
	}
	return all, nil
}

// Remove writes a tombstone: the secret is no longer released, and no
// check may name it. Earlier versions stay, sealed, for the audit trail.
func (s *Service) Remove(ctx context.Context, name, actor string) (int, error) {
	if err := ValidName(name); err != nil {
		return 0, err
	}
	now := s.now().UTC()
	var version int
	err := s.st.InTx(ctx, func(tx store.Tx) error {
		cur, err := tx.GetSecret(ctx, name)
		if errors.Is(err, store.ErrNotFound) || (err == nil && cur.Deleted) {
			return fmt.Errorf("%w: no secret %s", ErrNotFound, name)
		}
		if err != nil {
			return err
		}
		version = cur.Version + 1
		t := &store.SecretVersion{Name: name, Version: version, Workspace: cur.Workspace, Deleted: true, CreatedAt: now, CreatedBy: actor}
		if err := tx.AddSecretVersion(ctx, t); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, event(now, audit.SecretRemoved, actor, "secret:"+name, map[string]any{"version": version, "last_version": cur.Version}))
	})
	if err != nil {
		return 0, fmt.Errorf("removing secret %s: %w", name, err)
	}
	return version, nil
}

// reseal is how many versions RotateMaster re-seals per transaction.
const reseal = 100

// RotateMaster re-seals, under the current master key, the data key of
// every version sealed under another (one of the previous keys the
// service's keyring holds), in batches, each in its own transaction and
// audited. Values are not touched. A server holding both keys keeps
// releasing throughout; running it again after an interruption finishes
// the job. It returns how many data keys it re-sealed.
func (s *Service) RotateMaster(ctx context.Context, actor string) (int, error) {
	cur := s.master.ID()
	total := 0
	for {
		batch, err := s.st.SecretsSealedUnder(ctx, cur, reseal)
		if err != nil {
			return total, fmt.Errorf("rotating master key: %w", err)
		}
		if len(batch) == 0 {
			return total, nil
		}
		now := s.now().UTC()
		n := 0
		err = s.st.InTx(ctx, func(tx store.Tx) error {
			from := map[string]int{}
			var names []string
			for _, v := range batch {
				dk, err := openDataKey(s.master, v)
				if err != nil {
					return err
				}
				sealed, err := s.master.Seal(dk, aad("data key", v.Name, v.Version, v.Workspace))
				clear(dk)
				if err != nil {
					return fmt.Errorf("re-sealing data key of version %d of secret %s: %w", v.Version, v.Name, err)
				}
				ok, err := tx.ResealSecret(ctx, v.Name, v.Version, v.KeyID, cur, sealed)
				if err != nil {
					return err
				}
				if ok {
					n++
					from[v.KeyID]++
					names = append(names, fmt.Sprintf("%s@%d", v.Name, v.Version))
				}
			}
			if n == 0 {
				return nil
			}
			return tx.AppendAudit(ctx, event(now, audit.SecretResealed, actor, "master-key:"+cur, map[string]any{
				"key_id": cur, "from": from, "versions": names,
			}))
		})
		if err != nil {
			return total, fmt.Errorf("rotating master key: %w", err)
		}
		total += n
		if n == 0 {
			// Every row of the batch was re-sealed by someone else between
			// the read and the update; read again.
			continue
		}
	}
}

// Resolve returns the newest version of each name, which must be live and
// for workspace: a check for workspace may name them, and a release gives
// them out. A name that is missing, removed or for other workspaces is the
// same ErrNotFound, so that a token learns nothing of other workspaces'
// secrets.
func Resolve(ctx context.Context, r Reader, workspace string, names []string) ([]*store.SecretVersion, error) {
	out := make([]*store.SecretVersion, 0, len(names))
	for _, name := range names {
		if err := ValidName(name); err != nil {
			return nil, err
		}
		v, err := r.GetSecret(ctx, name)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("reading secret %s: %w", name, err)
		}
		if err != nil || v.Deleted || !matchWorkspace(v.Workspace, workspace) {
			return nil, &notFound{name, workspace}
		}
		out = append(out, v)
	}
	return out, nil
}

// notFound says a secret is not there for a workspace; it is ErrNotFound.
type notFound struct{ name, workspace string }

func (e *notFound) Error() string {
	return fmt.Sprintf("no secret %s for workspace %q", e.name, e.workspace)
}

func (e *notFound) Is(target error) bool { return target == ErrNotFound }

func matchWorkspace(glob, workspace string) bool {
	ok, err := path.Match(glob, workspace)
	return err == nil && ok
}

// Open returns the value of a version. The caller clears it once used and
// never logs, stores or formats it.
func (s *Service) Open(v *store.SecretVersion) ([]byte, error) {
	return open(s.master, v)
}

func event(t time.Time, typ, actor, subject string, data map[string]any) *audit.Event {
	e := &audit.Event{Time: t, Type: typ, Actor: actor, Subject: subject}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			b, _ = json.Marshal(map[string]string{"encoding_error": err.Error()})
		}
		e.Data = b
	}
	return e
}
