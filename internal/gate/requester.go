package gate

import (
	"context"

	"github.com/stepgate/stepgate/internal/ident"
)

// requester is who asked, from what was authenticated only: the person
// who owns the API token; for a CI token, the person its verified claims
// (system and actor) are linked to (`stepgate users link alice
// github:alice`); else the token's (or CI rule's) name. What a request
// says of its pipeline never counts here.
func (s *Service) requester(ctx context.Context, caller *Caller) string {
	if caller.Owner != "" {
		return caller.Owner
	}
	system, actor := ident.CISystem(caller.Pipeline["system"]), caller.Pipeline["actor"]
	if system == "" || actor == "" {
		return caller.Name
	}
	link, err := ident.Link(system + ":" + actor)
	if err != nil {
		return caller.Name
	}
	u, err := s.st.FindUserByLink(ctx, link)
	if err != nil || !u.DisabledAt.IsZero() {
		return caller.Name
	}
	return u.Name
}
