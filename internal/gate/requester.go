package gate

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/ciclaims"
	"github.com/stepgate/stepgate/internal/ident"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// requester is who asked, from what was authenticated only: the person
// who owns the API token; for a CI token, the person its verified claims
// (system and actor) are linked to (`stepgate users link alice
// github:alice`); else the token's (or CI rule's) name. What a request
// says of its pipeline never counts here.
func (s *Service) requester(ctx context.Context, caller *Caller) string {
	return s.requesterOf(ctx, caller).Name
}

// requesterOf is input.requester: its kind is person only when the
// requester is a person's account (the owner of the API token, or the
// person a CI actor is linked to), never because of a token's name.
func (s *Service) requesterOf(ctx context.Context, caller *Caller) policy.Requester {
	if caller.Owner != "" {
		r := policy.Requester{Kind: policy.RequesterPerson, Name: caller.Owner, Owner: caller.Owner, Groups: []string{}}
		u := caller.owner // read by Authenticate
		if u == nil {
			if got, err := s.st.GetUserByName(ctx, caller.Owner); err == nil {
				u = got
			}
		}
		if u != nil && u.DisabledAt.IsZero() {
			r.Groups = slices.Clone(u.Groups)
		}
		return r
	}
	kind := policy.RequesterToken
	if caller.Claims != nil {
		kind = policy.RequesterCI
	}
	fallback := policy.Requester{Kind: kind, Name: caller.Name, Groups: []string{}}
	system, actor := ident.CISystem(caller.Pipeline["system"]), caller.Pipeline["actor"]
	if system == "" || actor == "" {
		return fallback
	}
	link, err := ident.Link(system + ":" + actor)
	if err != nil {
		return fallback
	}
	u, err := s.st.FindUserByLink(ctx, link)
	if err != nil || !u.DisabledAt.IsZero() {
		return fallback
	}
	return policy.Requester{Kind: policy.RequesterPerson, Name: u.Name, Owner: u.Name, Groups: slices.Clone(u.Groups)}
}

// policyContext is what the policy knows of a new check besides its plan:
// the CI token's verified claims (never what the request says, which goes
// apart as unverified), the requester, the time, and the store's history.
func (s *Service) policyContext(ctx context.Context, caller *Caller, r *CreateRequest, planSHA string, now time.Time) (policy.Context, error) {
	pc := policy.Context{
		PipelineUnverified: r.Pipeline,
		Requester:          s.requesterOf(ctx, caller),
		At:                 now,
	}
	if caller.Claims != nil {
		p := ciclaims.Normalize(caller.Pipeline["system"], caller.Claims)
		pc.Pipeline = &p
	}
	h, err := s.st.CheckHistory(ctx, store.HistoryQuery{
		Workspace: r.Workspace, Requester: pc.Requester.Name, PlanSHA256: planSHA,
		Since: now.Add(-time.Hour), Now: now,
	})
	if err != nil {
		return pc, fmt.Errorf("reading history for the policy: %w", err) // never evaluated without it
	}
	pc.History = &policy.History{
		LastAppliedAt: h.LastAppliedAt, LastAppliedBy: h.LastAppliedBy,
		RequesterApplied: h.RequesterApplied, RequesterChecksLastHour: h.RequesterChecks,
		PlanApprovedThenExpired: h.PlanApprovedThenExpired,
	}
	return pc, nil
}
