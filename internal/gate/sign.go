package gate

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/grant"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

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

// issue records a grant on the check; its token is signed when it is read.
func (s *Service) issue(c *store.Check, now time.Time) {
	c.GrantID = newID("grt_")
	c.GrantIssuedAt = now
	c.GrantExpiresAt = now.Add(s.cfg.GrantTTL)
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
