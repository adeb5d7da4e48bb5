package gate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/ciclaims"
	"github.com/stepgate/stepgate/internal/notify"
	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

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
	// BreakGlass, when set, asks for the emergency path (breakglass.go).
	BreakGlass *BreakGlassRequest
	// MaxTTL, when positive, shortens how long the check waits for people
	// below the server's check_ttl: an HCP Terraform run task must answer
	// within the hour HCP Terraform waits.
	MaxTTL time.Duration
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
	if r.BreakGlass != nil { // asking for break-glass is another check than asking people
		fmt.Fprintf(h, "break-glass\n")
	}
	return hex.EncodeToString(h.Sum(nil))
}

// runKeyPrefix marks the resume key of a check any job of its run may
// resume (runResumeKey); other keys are bare hex digests.
const runKeyPrefix = "run:"

// runResumeKey is the resume key of a request by a verified CI identity:
// the run the token's verified claims name (ciclaims.Pipeline.RunKey:
// issuer, repository, run, attempt, commit), not the token's subject, so
// that the apply job of a run (whose subject names its environment) finds
// the check its plan job asked for, for the same plan and target. It is
// empty, and the check is the token's own, for an API token or an HCP
// Terraform run (no verified OIDC subject), for claims that name no run,
// and for a request for secrets (released to the token that asked only)
// or a break-glass (the requester's own emergency). What a request says of
// its pipeline (pipeline.*) never counts: it is not in caller.Claims.
func runResumeKey(caller *Caller, r *CreateRequest, planSHA string) string {
	if caller == nil || caller.Subject == "" || caller.Claims == nil || len(r.Secrets) > 0 || r.BreakGlass != nil {
		return ""
	}
	run := ciclaims.Normalize(caller.Pipeline["system"], caller.Claims).RunKey()
	if run == "" {
		return ""
	}
	return runKeyPrefix + resumeKey(runKeyPrefix+run, r, planSHA)
}

// sameRun reports whether caller may receive the grant of c as a job of
// the run that asked for it: c was asked for with a run key, caller may
// use its workspace, and caller's verified run, asking for c's plan and
// target, gives that key.
func sameRun(caller *Caller, c *store.Check) bool {
	if caller == nil || !strings.HasPrefix(c.ResumeKey, runKeyPrefix) || !caller.MayUse(c.Workspace) {
		return false
	}
	r := &CreateRequest{Kind: c.Kind, Workspace: c.Workspace, Environment: c.Environment, PlanFileSHA256: c.PlanFileSHA256}
	key := runResumeKey(caller, r, c.PlanSHA256)
	return key != "" && key == c.ResumeKey
}

// CreateCheck assesses an operation and records its check. A pending check
// with the same inputs from the same token (for a verified CI identity: the
// same run) is resumed instead (created is then false).
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
	if err := s.checkBreakGlassRequest(ctx, caller, r); err != nil {
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
	if run := runResumeKey(caller, r, planSHA); run != "" {
		key = run
	}
	now := s.now().UTC()
	// The same pipeline asking again for the same plan resumes its check: a
	// pending one waits on, an approved (or allowed) one whose grant is not
	// used and still valid hands that grant back instead of asking people
	// again. For a verified CI identity the same pipeline is the same run,
	// whichever of its jobs asks (runResumeKey).
	if c, err := s.st.FindResumableCheck(ctx, key); err == nil && resumable(c, now) {
		v, err := s.view(ctx, caller, c)
		if v != nil {
			v.Resumed = true
			if c.TokenID != caller.TokenID {
				s.log.InfoContext(ctx, "check resumed by another job of its run", "check", c.ID, "token", caller.Name, "subject", caller.Subject)
			}
		}
		return v, false, err
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, false, fmt.Errorf("looking for a check to resume: %w", err)
	}
	if err := s.admitPending(ctx, caller); err != nil {
		return nil, false, err
	}
	pc, err := s.policyContext(ctx, caller, r, planSHA, now)
	if err != nil {
		return nil, false, err
	}
	in.SetContext(pc)
	a, err := s.engine.Evaluate(ctx, in)
	if err != nil {
		return nil, false, err // never an allow
	}
	if unverified != nil {
		a.Findings = append(a.Findings, *unverified)
	}
	id := newID("chk_")
	requester := pc.Requester.Name
	// Before the assessment is encoded: a deny break-glass may override
	// waits for a break-glass only, with its requirements.
	bg, bgEvents := s.breakGlassOnCreate(id, a, r, requester, now)
	assessment, err := json.Marshal(a)
	if err != nil {
		return nil, false, fmt.Errorf("encoding assessment: %w", err)
	}
	c := &store.Check{
		ID:                 id,
		Kind:               r.Kind,
		Workspace:          r.Workspace,
		Environment:        r.Environment,
		PlanSHA256:         planSHA,
		PlanFileSHA256:     r.PlanFileSHA256,
		Requester:          requester,
		TokenID:            caller.TokenID,
		Pipeline:           caller.Pipeline,
		PipelineUnverified: r.Pipeline,
		Assessment:         assessment,
		ResumeKey:          key,
		CreatedAt:          now,
		UpdatedAt:          now,
		ExpiresAt:          now.Add(s.checkTTL(r)),
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
	if r.BreakGlass != nil {
		createdData["break_glass"] = strings.TrimSpace(r.BreakGlass.Reason)
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
	case policy.Deny:
		if bg == nil {
			c.State = store.StateDenied
			events = append(events, s.event(now, audit.CheckDenied, "policy", c.ID, nil))
			break
		}
		c.State = store.StatePending // for a break-glass only
		events = append(events, s.event(now, audit.CheckPending, "policy", c.ID, map[string]any{"expires_at": c.ExpiresAt}))
	default:
		c.State = store.StateDenied
		events = append(events, s.event(now, audit.CheckDenied, "policy", c.ID, nil))
	}
	events = append(events, bgEvents...)
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
		if bg != nil {
			if err := tx.CreateBreakGlass(ctx, bg); err != nil {
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

// checkTTL is how long a new check of r waits for people.
func (s *Service) checkTTL(r *CreateRequest) time.Duration {
	if r.MaxTTL > 0 && r.MaxTTL < s.cfg.CheckTTL {
		return r.MaxTTL
	}
	return s.cfg.CheckTTL
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
