package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

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
// for the token that asked or, for a check a CI run asked for, another job
// of that run that may use its workspace (sameRun): the same grant, bound
// to the check's plan and to the run's verified claims.
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
	switch bg, err := s.st.GetBreakGlass(ctx, c.ID); {
	case err == nil:
		v.BreakGlass = s.breakGlassView(bg, s.now().UTC())
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("reading break-glass of %s: %w", c.ID, err)
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
	if (c.State == store.StateAllowed || c.State == store.StateApproved) && caller != nil && (caller.TokenID == c.TokenID || sameRun(caller, c)) {
		tok, err := s.sign(ctx, c, a, approvals, secretNames(secrets))
		if err != nil {
			return nil, err
		}
		v.Grant = tok
	}
	return v, nil
}
