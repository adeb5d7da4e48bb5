package gate

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/plan/planfile"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// RuleUnverified is the finding added to a check whose saved plan was not
// verified against its JSON (json-only binding).
const RuleUnverified = "plan.unverified"

// ErrSavedPlan says a check was refused because of its saved plan: it
// differs from the plan JSON, cannot be read, or is missing. It comes with
// ErrBadRequest.
var ErrSavedPlan = errors.New("saved plan refused")

// binding follows one request's saved plan: the JSON's side is collected
// while the plan JSON is decoded.
type binding struct {
	json *planfile.JSONPlan
}

// planOptions returns the options to decode the request's plan JSON with:
// when the request may carry a saved plan, its changes are also collected
// as written, for the comparison.
func (s *Service) planOptions(r *CreateRequest) (plan.Options, *binding) {
	opts := plan.Options{MaxBytes: s.cfg.MaxPlanBytes}
	if r.SavedPlan == nil {
		return opts, nil
	}
	hook, jp := planfile.Collect()
	opts.Raw = hook
	return opts, &binding{json: jp}
}

// bindSavedPlan verifies the request's saved plan against its plan JSON p,
// and sets r.PlanFileSHA256 to the digest of the bytes received. A refusal
// is audited and returned (ErrBadRequest and ErrSavedPlan). A finding is
// returned, rather than a refusal, when the json-only binding accepts a
// saved plan that could not be verified.
func (s *Service) bindSavedPlan(ctx context.Context, caller *Caller, r *CreateRequest, p *plan.Plan, b *binding) (*policy.Finding, error) {
	claimed := r.PlanFileSHA256
	var saved io.Reader
	if r.SavedPlan != nil {
		var err error
		if saved, err = r.SavedPlan(); err != nil {
			return nil, fmt.Errorf("%w: plan_file: %w", ErrBadRequest, err)
		}
	}
	refuse := func(sent string, reason error) error {
		s.auditRefusal(ctx, caller, r, p, claimed, sent, reason)
		return fmt.Errorf("%w: %w: %w", ErrBadRequest, ErrSavedPlan, reason)
	}
	jsonOnly := s.cfg.SavedPlanBinding == planfile.BindingJSONOnly
	switch {
	case saved == nil && claimed == "":
		return nil, nil // no saved plan named: nothing to bind
	case saved == nil && jsonOnly:
		return UnverifiedFinding("only the saved plan's sha256 was sent, not the saved plan"), nil
	case saved == nil:
		return nil, refuse("", errors.New("the check names a saved plan (plan_file_sha256) but does not send it; send it as the plan_file part (stepgate check --plan-file does, from this version on)"))
	case p == nil || (p.Format != plan.FormatTerraform && p.Format != plan.FormatHCPTerraform) || b == nil:
		return nil, refuse("", errors.New("a saved plan goes with the JSON of a Terraform or OpenTofu plan (terraform show -json)"))
	}
	// The digest is the server's own, of the bytes received, whether or not
	// they could be read as a plan.
	h := sha256.New()
	b.json.Done(p)
	sp, err := planfile.Read(io.TeeReader(saved, h), planfile.Options{MaxFileBytes: s.cfg.MaxSavedPlanBytes})
	if errors.Is(err, planfile.ErrTooLarge) {
		return nil, refuse("", err)
	}
	sent := hex.EncodeToString(h.Sum(nil))
	if claimed != "" && subtle.ConstantTimeCompare([]byte(claimed), []byte(sent)) != 1 {
		return nil, refuse(sent, fmt.Errorf("plan_file_sha256 %s is not the sha256 of the saved plan sent (%s)", claimed, sent))
	}
	switch {
	case err != nil && errors.Is(err, planfile.ErrUnsupported) && jsonOnly:
		r.PlanFileSHA256 = sent
		return UnverifiedFinding(err.Error()), nil
	case err != nil:
		return nil, refuse(sent, err)
	}
	if err := planfile.Compare(b.json, sp); err != nil {
		return nil, refuse(sent, err)
	}
	r.PlanFileSHA256 = sent
	return nil, nil
}

// UnverifiedFinding is the finding RuleUnverified, saying why.
func UnverifiedFinding(why string) *policy.Finding {
	return &policy.Finding{
		Rule:      RuleUnverified,
		Decision:  policy.Allow,
		Severity:  "medium",
		Addresses: []string{},
		Reason:    "the saved plan was not verified against the plan JSON (plan.saved_plan_binding: json-only): " + why,
	}
}

// auditRefusal writes a refused check to the audit log: who asked, for
// which workspace, with which plans, and why.
func (s *Service) auditRefusal(ctx context.Context, caller *Caller, r *CreateRequest, p *plan.Plan, claimed, sent string, reason error) {
	planSHA := ""
	if p != nil {
		planSHA = p.SHA256
	}
	now := s.now().UTC()
	e := s.event(now, audit.CheckRefused, s.requester(ctx, caller), "workspace:"+r.Workspace, map[string]any{
		"token": caller.Name,
		"kind":  r.Kind, "workspace": r.Workspace, "environment": r.Environment,
		"plan_sha256": planSHA, "plan_file_sha256": sent, "plan_file_sha256_claimed": claimed,
		"reason": reason.Error(), "pipeline": caller.Pipeline, "pipeline_unverified": r.Pipeline,
	})
	if err := s.st.InTx(ctx, func(tx store.Tx) error { return tx.AppendAudit(ctx, e) }); err != nil {
		s.log.ErrorContext(ctx, "auditing a refused check failed", "workspace", r.Workspace, "err", err)
	}
}
