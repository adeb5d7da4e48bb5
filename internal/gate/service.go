package gate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/grant"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/notify"
	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/requestid"
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
	// SubjectTemplate, when set, is the sub of grants, such as
	// "workspace:{workspace}:aal:{aal}" (see SubjectFields), for clouds that
	// match the subject exactly; the check id is then in check_id only.
	SubjectTemplate string
	// AWSSessionTags adds the https://aws.amazon.com/tags claim to grants:
	// AWS session tags naming the kind, workspace, environment, check and
	// secrets (see awsTags).
	AWSSessionTags bool
}

// SubjectFields are the placeholders a subject template may use.
var SubjectFields = []string{"{workspace}", "{environment}", "{kind}", "{aal}", "{decision}", "{secrets}"}

// ValidSubjectTemplate reports what is wrong with a subject template: it
// must name the workspace (a subject shared by every workspace would let a
// cloud accept any grant), and use only known placeholders.
func ValidSubjectTemplate(t string) error {
	if t == "" || t == "check" {
		return nil
	}
	if !strings.Contains(t, "{workspace}") {
		return fmt.Errorf("grant subject %q must contain {workspace}", t)
	}
	rest := t
	for _, f := range SubjectFields {
		rest = strings.ReplaceAll(rest, f, "")
	}
	if strings.ContainsAny(rest, "{}") {
		return fmt.Errorf("grant subject %q: unknown placeholder (want %s)", t, strings.Join(SubjectFields, ", "))
	}
	return nil
}

// subject renders the sub of a grant.
func (s *Service) subject(c *store.Check, cl *grant.Claims) string {
	t := s.cfg.SubjectTemplate
	if t == "" || t == "check" {
		return c.ID
	}
	return strings.NewReplacer(
		"{workspace}", c.Workspace,
		"{environment}", c.Environment,
		"{kind}", c.Kind,
		"{aal}", strconv.Itoa(cl.AAL),
		"{decision}", cl.Decision,
		"{secrets}", strings.Join(cl.Secrets, ","),
	).Replace(t)
}

// Service is the gate.
type Service struct {
	st     store.Store
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
func New(st store.Store, engine *policy.Engine, ring *keys.Ring, cfg Config, log *slog.Logger, now func() time.Time) *Service {
	if cfg.Audience == "" {
		cfg.Audience = "stepgate"
	}
	if cfg.CheckTTL <= 0 {
		cfg.CheckTTL = time.Hour
	}
	if cfg.GrantTTL <= 0 {
		cfg.GrantTTL = 15 * time.Minute
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	log = requestid.Logger(log) // the request's id on each line
	return &Service{st: st, engine: engine, ring: ring, cfg: cfg, log: log, now: now, limiter: newLimiter(cfg.Limits, now)}
}

// Issuer is the iss of grants: the public URL.
func (s *Service) Issuer() string { return s.cfg.PublicURL }

// Audience is the aud of grants.
func (s *Service) Audience() string { return s.cfg.Audience }

// CreateRequest is an operation a pipeline submits.
type CreateRequest struct {
	Kind           string
	Workspace      string
	Environment    string
	PlanFileSHA256 string
	// Pipeline is what the request says of its pipeline (the pipeline.*
	// parameters): recorded as unverified claims, never used for identity.
	// A CI caller's verified claims come from Caller.Pipeline.
	Pipeline map[string]string
	// Plan is the plan document; nil or empty for an operation without a
	// plan (secret.read).
	Plan io.Reader
	// SavedPlan, when set, returns the saved plan (terraform plan -out)
	// once Plan has been read, or nil when none was sent. It is verified
	// against Plan (see bindSavedPlan), then dropped.
	SavedPlan func() (io.Reader, error)
	// Secrets are the secrets the grant would release (stepgate secrets
	// get, exec, check --secret), each with the environment variable the
	// pipeline wants it in, if any.
	Secrets []store.CheckSecret
}

var (
	hexDigest   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	pipelineKey = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
)

func (r *CreateRequest) validate() error {
	var errs []error
	if err := (policy.Operation{Kind: r.Kind}).Validate(); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(r.Workspace) == "" || len(r.Workspace) > 256 {
		errs = append(errs, errors.New("workspace is required (at most 256 characters)"))
	}
	if len(r.Environment) > 128 {
		errs = append(errs, errors.New("environment is longer than 128 characters"))
	}
	if r.PlanFileSHA256 != "" && !hexDigest.MatchString(r.PlanFileSHA256) {
		errs = append(errs, errors.New("plan_file_sha256 is not a lower-case hex SHA-256"))
	}
	if len(r.Pipeline) > 32 {
		errs = append(errs, errors.New("more than 32 pipeline fields"))
	}
	for k, v := range r.Pipeline {
		if !pipelineKey.MatchString(k) || len(v) > 1024 {
			errs = append(errs, fmt.Errorf("pipeline field %q: names are lower-case words, values at most 1024 characters", k))
		}
	}
	if err := validSecrets(r.Secrets); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// resumeKey identifies a request's inputs: the same pipeline token asking
// again for the same plan and target finds its pending check.
func resumeKey(tokenID string, r *CreateRequest, planSHA string) string {
	h := sha256.New()
	for _, s := range []string{tokenID, r.Kind, r.Workspace, r.Environment, planSHA, r.PlanFileSHA256} {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	for _, sec := range r.Secrets { // none: the key of a check without secrets is unchanged
		fmt.Fprintf(h, "secret %d:%s %d:%s\n", len(sec.Env), sec.Env, len(sec.Name), sec.Name)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func newID(prefix string) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the system has no randomness left: nothing is safe
	}
	return prefix + hex.EncodeToString(b)
}

// CreateCheck assesses an operation and records its check. A pending check
// with the same inputs from the same token is resumed instead (created is
// then false).
func (s *Service) CreateCheck(ctx context.Context, caller *Caller, r *CreateRequest) (v *api.Check, created bool, err error) {
	if err := r.validate(); err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if !caller.MayUse(r.Workspace) {
		err := fmt.Errorf("%w: token %q may not ask for workspace %q", ErrForbidden, caller.Name, r.Workspace)
		if len(r.Secrets) > 0 || r.Kind == "secret.read" {
			s.refuseSecrets(ctx, caller, "", r, err)
			return nil, false, audited{err}
		}
		return nil, false, err
	}
	if err := s.admit(ctx, caller); err != nil {
		return nil, false, err
	}
	op := policy.Operation{Kind: r.Kind, Workspace: r.Workspace, Environment: r.Environment}
	if op.Secrets, err = s.secretRefs(ctx, caller, r); err != nil {
		return nil, false, err
	}
	in := s.engine.NewInput(op)
	var p *plan.Plan
	var changes changeLog
	opts, bind := s.planOptions(r)
	if r.Plan != nil {
		visit, done := in.Stream()
		keep := func(c *plan.Change) error {
			changes.add(c)
			return visit(c)
		}
		p, err = plan.Decode(r.Plan, opts, keep)
		// A change whose terms could not be built stopped decoding: that
		// is the cause, whatever decoding returned.
		derr := done()
		switch {
		case derr != nil && errors.Is(derr, policy.ErrInput):
			return nil, false, fmt.Errorf("%w: plan: %w", ErrBadRequest, derr)
		case derr != nil:
			return nil, false, fmt.Errorf("building policy input: %w", derr)
		case errors.Is(err, plan.ErrEmpty) && r.Kind == "secret.read":
			p, err = nil, nil
		case err != nil && plan.IsBadInput(err):
			return nil, false, fmt.Errorf("%w: plan: %w", ErrBadRequest, err)
		case err != nil:
			return nil, false, fmt.Errorf("reading plan: %w", err)
		}
	}
	if p == nil && r.Kind != "secret.read" {
		return nil, false, fmt.Errorf("%w: a %s needs a plan", ErrBadRequest, r.Kind)
	}
	unverified, err := s.bindSavedPlan(ctx, caller, r, p, bind)
	if err != nil {
		return nil, false, err
	}
	planSHA := ""
	if p != nil {
		in.SetPlan(p)
		planSHA = p.SHA256
	}
	key := resumeKey(caller.TokenID, r, planSHA)
	now := s.now().UTC()
	// The same pipeline asking again for the same plan resumes its check: a
	// pending one waits on, an approved (or allowed) one whose grant is not
	// used and still valid hands that grant back instead of asking people
	// again.
	if c, err := s.st.FindResumableCheck(ctx, key); err == nil && resumable(c, now) {
		v, err := s.view(ctx, caller, c)
		if v != nil {
			v.Resumed = true
		}
		return v, false, err
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, false, fmt.Errorf("looking for a check to resume: %w", err)
	}
	if err := s.admitPending(ctx, caller); err != nil {
		return nil, false, err
	}
	a, err := s.engine.Evaluate(ctx, in)
	if err != nil {
		return nil, false, err // never an allow
	}
	if unverified != nil {
		a.Findings = append(a.Findings, *unverified)
	}
	assessment, err := json.Marshal(a)
	if err != nil {
		return nil, false, fmt.Errorf("encoding assessment: %w", err)
	}
	c := &store.Check{
		ID:                 newID("chk_"),
		Kind:               r.Kind,
		Workspace:          r.Workspace,
		Environment:        r.Environment,
		PlanSHA256:         planSHA,
		PlanFileSHA256:     r.PlanFileSHA256,
		Requester:          s.requester(ctx, caller),
		TokenID:            caller.TokenID,
		Pipeline:           caller.Pipeline,
		PipelineUnverified: r.Pipeline,
		Assessment:         assessment,
		ResumeKey:          key,
		CreatedAt:          now,
		UpdatedAt:          now,
		ExpiresAt:          now.Add(s.cfg.CheckTTL),
	}
	createdData := map[string]any{
		"token": caller.Name,
		"kind":  c.Kind, "workspace": c.Workspace, "environment": c.Environment,
		"plan_sha256": c.PlanSHA256, "plan_file_sha256": c.PlanFileSHA256,
		"decision": a.Decision, "rules": ruleIDs(a), "requirements": a.Requirements,
		"pipeline": c.Pipeline, "pipeline_unverified": c.PipelineUnverified,
	}
	if len(r.Secrets) > 0 {
		createdData["secrets"] = secretNames(r.Secrets)
	}
	if caller.Owner != "" {
		createdData["token_owner"] = caller.Owner
	}
	events := []*audit.Event{s.event(now, audit.CheckCreated, c.Requester, c.ID, createdData)}
	switch a.Decision {
	case policy.Allow:
		c.State = store.StateAllowed
		s.issue(c, now)
		events = append(events,
			s.event(now, audit.CheckAllowed, "policy", c.ID, nil),
			s.event(now, audit.GrantIssued, "policy", c.ID, map[string]any{"grant_id": c.GrantID, "expires_at": c.GrantExpiresAt}))
	case policy.StepUp:
		c.State = store.StatePending
		events = append(events, s.event(now, audit.CheckPending, "policy", c.ID, map[string]any{"expires_at": c.ExpiresAt}))
	default:
		c.State = store.StateDenied
		events = append(events, s.event(now, audit.CheckDenied, "policy", c.ID, nil))
	}
	var cp *audit.Checkpoint
	err = s.st.InTx(ctx, func(tx store.Tx) error {
		if err := tx.CreateCheck(ctx, c); err != nil {
			return err
		}
		if p != nil {
			if err := tx.PutCheckChanges(ctx, c.ID, changes.json()); err != nil {
				return err
			}
		}
		if len(r.Secrets) > 0 {
			if err := tx.PutCheckSecrets(ctx, c.ID, r.Secrets); err != nil {
				return err
			}
		}
		if err := appendAll(ctx, tx, events); err != nil {
			return err
		}
		if c.GrantID == "" {
			return nil
		}
		return s.sealIn(ctx, tx, &cp)
	})
	if err != nil {
		return nil, false, fmt.Errorf("recording check: %w", err)
	}
	s.publish(ctx, cp)
	s.wake(ctx, c.ID)
	s.log.InfoContext(ctx, "check created", "check", c.ID, "state", c.State, "workspace", c.Workspace, "kind", c.Kind, "requester", c.Requester)
	// A new check has no approvals yet, and its assessment is a: nothing to
	// read back from the store.
	if v, err = s.render(ctx, caller, c, a, nil); err != nil {
		return nil, false, err
	}
	if c.State == store.StatePending {
		s.tell(ctx, notify.Pending, v) // a pending check carries no grant
	}
	return v, true, nil
}

func resumable(c *store.Check, now time.Time) bool {
	switch c.State {
	case store.StatePending:
		return c.ExpiresAt.After(now)
	case store.StateAllowed, store.StateApproved:
		return c.GrantExpiresAt.After(now)
	}
	return false
}

func ruleIDs(a *policy.Assessment) []string {
	ids := []string{}
	for _, f := range a.Findings {
		if !slices.Contains(ids, f.Rule) {
			ids = append(ids, f.Rule)
		}
	}
	return ids
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

// issue records a grant on the check; its token is signed when it is read.
func (s *Service) issue(c *store.Check, now time.Time) {
	c.GrantID = newID("grt_")
	c.GrantIssuedAt = now
	c.GrantExpiresAt = now.Add(s.cfg.GrantTTL)
}

func (s *Service) wake(ctx context.Context, id string) {
	if err := s.st.NotifyCheck(ctx, id); err != nil {
		// Waiters also re-read on their own timeout: a lost wake-up delays,
		// it does not lose anything.
		s.log.WarnContext(ctx, "notifying waiters failed", "check", id, "err", err)
	}
}

// GetCheck returns a check the caller may see: one of its workspaces.
func (s *Service) GetCheck(ctx context.Context, caller *Caller, id string) (*api.Check, error) {
	c, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if !caller.MayUse(c.Workspace) {
		return nil, fmt.Errorf("%w: no check %s", ErrNotFound, id) // do not reveal checks of other workspaces
	}
	return s.view(ctx, caller, c)
}

func (s *Service) load(ctx context.Context, id string) (*store.Check, error) {
	c, err := s.st.GetCheck(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: no check %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading check %s: %w", id, err)
	}
	if c.State == store.StatePending && !c.ExpiresAt.After(s.now()) {
		return s.expire(ctx, id)
	}
	return c, nil
}

// view turns a stored check into its API form. The grant is signed only
// for the token that asked.
func (s *Service) view(ctx context.Context, caller *Caller, c *store.Check) (*api.Check, error) {
	var a policy.Assessment
	if err := json.Unmarshal(c.Assessment, &a); err != nil {
		return nil, fmt.Errorf("decoding assessment of %s: %w", c.ID, err)
	}
	approvals, err := s.st.ListApprovals(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("reading approvals of %s: %w", c.ID, err)
	}
	return s.render(ctx, caller, c, &a, approvals)
}

// render is view with the check's assessment and approvals at hand.
func (s *Service) render(ctx context.Context, caller *Caller, c *store.Check, a *policy.Assessment, approvals []*store.Approval) (*api.Check, error) {
	v := &api.Check{
		ID: c.ID, State: string(c.State), Kind: c.Kind, Workspace: c.Workspace, Environment: c.Environment,
		PlanSHA256: c.PlanSHA256, PlanFileSHA256: c.PlanFileSHA256, Requester: c.Requester,
		Pipeline: c.Pipeline, PipelineUnverified: c.PipelineUnverified, Assessment: a, CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt,
		Approvals: []api.Approval{},
	}
	if c.State == store.StatePending {
		v.ReviewURL = s.cfg.PublicURL + "/checks/" + c.ID
	}
	secrets, err := s.st.GetCheckSecrets(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("reading secrets of %s: %w", c.ID, err)
	}
	for _, sec := range secrets {
		v.Secrets = append(v.Secrets, api.CheckSecret{Name: sec.Name, Env: sec.Env})
	}
	var withdrawn map[string]string
	if c.State == store.StatePending && a.Requirements != nil && len(approvals) > 0 {
		var err error
		if withdrawn, err = Withdrawn(ctx, s.st, a.Requirements, c.Requester, approvals); err != nil {
			return nil, fmt.Errorf("reading the approvers of %s: %w", c.ID, err)
		}
	}
	for _, ap := range approvals {
		v.Approvals = append(v.Approvals, api.Approval{
			Subject: ap.Subject, Approved: ap.Approved, Reason: ap.Reason, AMR: ap.AMR, AAL: ap.AAL,
			AuthTime: ap.AuthTime, CreatedAt: ap.CreatedAt, Withdrawn: withdrawn[ap.Subject],
		})
	}
	if c.GrantID != "" {
		v.GrantID = c.GrantID
		exp := c.GrantExpiresAt
		v.GrantExpiresAt = &exp
	}
	if (c.State == store.StateAllowed || c.State == store.StateApproved) && caller != nil && caller.TokenID == c.TokenID {
		tok, err := s.sign(ctx, c, a, approvals, secretNames(secrets))
		if err != nil {
			return nil, err
		}
		v.Grant = tok
	}
	return v, nil
}

// sign writes the grant of a check. Signing the same claims with the same
// Ed25519 key gives the same token every time.
func (s *Service) sign(ctx context.Context, c *store.Check, a *policy.Assessment, approvals []*store.Approval, secrets []string) (string, error) {
	claims := &grant.Claims{
		Issuer:         s.cfg.PublicURL,
		Subject:        c.ID,
		CheckID:        c.ID,
		Audience:       jwt.Audience{s.cfg.Audience},
		IssuedAt:       jwt.NewNumericDate(c.GrantIssuedAt),
		NotBefore:      jwt.NewNumericDate(c.GrantIssuedAt),
		Expiry:         jwt.NewNumericDate(c.GrantExpiresAt),
		ID:             c.GrantID,
		PlanSHA256:     c.PlanSHA256,
		PlanFileSHA256: c.PlanFileSHA256,
		Workspace:      c.Workspace,
		Environment:    c.Environment,
		Kind:           c.Kind,
		Pipeline:       c.Pipeline,
		Requester:      c.Requester,
		Decision:       string(a.Decision),
		Rules:          ruleIDs(a),
		Secrets:        secrets,
	}
	// Only the approvals that counted when the grant was issued: the
	// grant's aal is a promise to whoever trusts it. Record kept which
	// (their people enabled and eligible then); a grant issued before it
	// kept them has those whose proof qualified then.
	kept, err := s.st.GrantApprovals(ctx, c.ID)
	if err != nil {
		return "", fmt.Errorf("reading the approvals of the grant of %s: %w", c.ID, err)
	}
	for _, ap := range approvals {
		switch {
		case len(kept) > 0 && !slices.Contains(kept, ap.ID):
			continue
		case len(kept) == 0 && (a.Requirements == nil || !Qualifies(a.Requirements, c.Requester, ap, c.GrantIssuedAt)):
			continue
		}
		claims.Approvals = append(claims.Approvals, grant.Approval{Subject: ap.Subject, AAL: ap.AAL, AMR: ap.AMR, Time: ap.AuthTime.Unix()})
		if claims.AAL == 0 || ap.AAL < claims.AAL {
			claims.AAL = ap.AAL
		}
		for _, m := range ap.AMR {
			if !slices.Contains(claims.AMR, m) {
				claims.AMR = append(claims.AMR, m)
			}
		}
	}
	claims.Subject = s.subject(c, claims)
	if s.cfg.AWSSessionTags {
		claims.AWSTags = awsTags(c, claims)
	}
	kid, key, err := s.ring.Signer(ctx, s.st)
	if err != nil {
		return "", fmt.Errorf("loading signing key: %w", err)
	}
	tok, err := grant.Sign(kid, key, claims)
	if err != nil {
		return "", fmt.Errorf("signing grant of %s: %w", c.ID, err)
	}
	return tok, nil
}
