package gate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/requestid"
	"github.com/stepgate/stepgate/internal/secret"
	"github.com/stepgate/stepgate/internal/store"
)

// Config tunes the service.
type Config struct {
	// PublicURL is the issuer of grants and the base of review links.
	PublicURL string
	// Audience is the aud of grants.
	Audience string
	// CheckTTL is how long a pending check waits for people.
	CheckTTL time.Duration
	// GrantTTL is how long a grant is valid once issued.
	GrantTTL time.Duration
	// MaxPlanBytes caps the size of a plan sent to the server.
	MaxPlanBytes int64
	// MaxSavedPlanBytes caps the size of a saved plan sent to the server;
	// zero means planfile.DefaultMaxFileBytes.
	MaxSavedPlanBytes int64
	// SavedPlanBinding is planfile.BindingVerify (the default, "") or
	// planfile.BindingJSONOnly.
	SavedPlanBinding string
	// Limits bound what one token may ask (zero values: DefaultLimits).
	Limits Limits
	// RecheckInterval is how often a waiting request re-reads its check
	// without a notification: 0 means RecheckInterval, negative never.
	RecheckInterval time.Duration
	// SubjectTemplate, when set, is the sub of grants, such as
	// "workspace:{workspace}:aal:{aal}" (see SubjectFields), for clouds that
	// match the subject exactly; the check id is then in check_id only.
	SubjectTemplate string
	// AWSSessionTags adds the https://aws.amazon.com/tags claim to grants:
	// AWS session tags naming the kind, workspace, environment, check and
	// secrets (see awsTags).
	AWSSessionTags bool
	// BreakGlass tunes the emergency path (breakglass.go); off without a
	// group.
	BreakGlass BreakGlassConfig
}

// gateStore is what the gate uses of the store. Every change runs in InTx,
// whose store.Tx is the whole transaction; outside one, the gate only
// reads: checks and their parts, tokens, people, signing keys, secrets.
type gateStore interface {
	InTx(ctx context.Context, fn func(tx store.Tx) error) error
	NotifyCheck(ctx context.Context, id string) error
	keys.KeyStore // the ring's signing keys
	secret.Reader // the versions of released secrets

	GetCheck(ctx context.Context, id string) (*store.Check, error)
	GetCheckChanges(ctx context.Context, checkID string) (json.RawMessage, error)
	GetCheckSecrets(ctx context.Context, checkID string) ([]store.CheckSecret, error)
	ListApprovals(ctx context.Context, checkID string) ([]*store.Approval, error)
	GrantApprovals(ctx context.Context, checkID string) ([]string, error)
	FindResumableCheck(ctx context.Context, resumeKey string) (*store.Check, error)
	CountPendingChecks(ctx context.Context, tokenID string) (int, error)
	ExpiredChecks(ctx context.Context, t time.Time, limit int) ([]*store.Check, error)
	ListChecks(ctx context.Context, state store.CheckState, limit int) ([]*store.Check, error)
	ListChecksPage(ctx context.Context, state store.CheckState, offset, limit int) ([]*store.Check, error)
	GetToken(ctx context.Context, id string) (*store.Token, error)
	GetUser(ctx context.Context, id string) (*store.User, error)
	GetUserByName(ctx context.Context, name string) (*store.User, error)
	FindUserByLink(ctx context.Context, link string) (*store.User, error)
	CheckHistory(ctx context.Context, q store.HistoryQuery) (*store.History, error)
	GetBreakGlass(ctx context.Context, checkID string) (*store.BreakGlass, error)
	ListBreakGlassUsed(ctx context.Context, unreviewed bool, limit int) ([]*store.BreakGlass, error)
	ListBreakGlassReviewed(ctx context.Context, limit int) ([]*store.BreakGlass, error)
}

// Service is the gate.
type Service struct {
	st     gateStore
	engine *policy.Engine
	ring   *keys.Ring
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	notify Notifier
	sealer Sealer
	// secrets opens what a grant releases (SetSecrets); nil: no release.
	secrets SecretOpener
	// limiter enforces cfg.Limits.
	limiter *limiter
	// anonymous spaces the audit writes of refusals nobody authenticated
	// for, per action and client address (AuditRefusal).
	anonymous *limiter
	// waiting, when set (tests), is called each time a waiter has read its
	// check as pending and waits for news.
	waiting func(id string)
}

// Notifier tells people about checks (package notify); it must not block,
// nor change c, which the caller still uses.
type Notifier interface {
	Notify(ctx context.Context, event string, c *api.Check)
}

// SetNotifier makes the service announce checks that become pending,
// approved, rejected or expired.
func (s *Service) SetNotifier(n Notifier) { s.notify = n }

// announce tells the notifier, if any, about a check after a commit.
func (s *Service) announce(ctx context.Context, event string, c *store.Check) {
	if s.notify == nil {
		return
	}
	v, err := s.view(ctx, nil, c)
	if err != nil {
		s.log.ErrorContext(ctx, "preparing a notification failed", "check", c.ID, "err", err)
		return
	}
	s.notify.Notify(ctx, event, v)
}

// tell is announce of a check already in its API form.
func (s *Service) tell(ctx context.Context, event string, v *api.Check) {
	if s.notify != nil {
		s.notify.Notify(ctx, event, v)
	}
}

// New returns the gate over a store, a policy engine and a signing keyring.
func New(st gateStore, engine *policy.Engine, ring *keys.Ring, cfg Config, log *slog.Logger, now func() time.Time) *Service {
	if cfg.Audience == "" {
		cfg.Audience = "stepgate"
	}
	if cfg.CheckTTL <= 0 {
		cfg.CheckTTL = time.Hour
	}
	if cfg.GrantTTL <= 0 {
		cfg.GrantTTL = 15 * time.Minute
	}
	cfg.BreakGlass = cfg.BreakGlass.withDefaults(cfg.GrantTTL)
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	log = requestid.Logger(log) // the request's id on each line
	return &Service{st: st, engine: engine, ring: ring, cfg: cfg, log: log, now: now, limiter: newLimiter(cfg.Limits, now), anonymous: newLimiter(Limits{}, now)}
}

// Issuer is the iss of grants: the public URL.
func (s *Service) Issuer() string { return s.cfg.PublicURL }

// Audience is the aud of grants.
func (s *Service) Audience() string { return s.cfg.Audience }

func newID(prefix string) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the system has no randomness left: nothing is safe
	}
	return prefix + hex.EncodeToString(b)
}

func (s *Service) event(t time.Time, typ, actor, subject string, data any) *audit.Event {
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

func appendAll(ctx context.Context, tx store.Tx, events []*audit.Event) error {
	for _, e := range events {
		if err := tx.AppendAudit(ctx, e); err != nil {
			return fmt.Errorf("appending audit event %s: %w", e.Type, err)
		}
	}
	return nil
}

func (s *Service) wake(ctx context.Context, id string) {
	if err := s.st.NotifyCheck(ctx, id); err != nil {
		// Waiters also re-read on their own timeout: a lost wake-up delays,
		// it does not lose anything.
		s.log.WarnContext(ctx, "notifying waiters failed", "check", id, "err", err)
	}
}
