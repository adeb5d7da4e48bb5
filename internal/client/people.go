package client

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/stepgate/stepgate/internal/api"
)

// The people API (see internal/api/people.go): a person's client, whose
// token is an ID token of the organisation's OpenID Connect provider.

// WithToken returns a client of the same server that authenticates with
// token instead (a person's ID token after `stepgate login`).
func (c *Client) WithToken(token string) (*Client, error) {
	if strings.ContainsFunc(token, spaceOrControl) {
		return nil, errors.New("the token contains spaces or control characters")
	}
	cp := *c
	cp.token = token
	return &cp, nil
}

// Challenge is a WWW-Authenticate: Bearer challenge (RFC 6750 section 3,
// RFC 9470 section 3, RFC 9728 section 5.1).
type Challenge struct {
	// Error is "invalid_token", "insufficient_user_authentication"...; empty
	// when the request carried no token.
	Error       string
	Description string
	// ACRValues are the acr values to sign in again with, the preferred
	// first (space-separated in the header).
	ACRValues []string
	// MaxAge is the most seconds the sign-in may be old; -1 when the
	// challenge has none.
	MaxAge int64
	// ResourceMetadata is the URL of the protected resource metadata.
	ResourceMetadata string
}

// ChallengeError is an Error (a 401) whose answer carried a Bearer
// challenge: the people API's invalid_token and
// insufficient_user_authentication. errors.As finds the *Error in it too.
type ChallengeError struct {
	Err       *Error
	Challenge *Challenge
}

func (e *ChallengeError) Error() string { return e.Err.Error() }
func (e *ChallengeError) Unwrap() error { return e.Err }

// ParseChallenge reads the Bearer challenge of WWW-Authenticate header
// values; false when there is none. Parameter values may be tokens or
// quoted strings.
func ParseChallenge(values []string) (*Challenge, bool) {
	for _, v := range values {
		params, ok := bearerParams(v)
		if !ok {
			continue
		}
		ch := &Challenge{
			Error: clean(params["error"], 64), Description: clean(params["error_description"], 1000),
			MaxAge: -1, ResourceMetadata: clean(params["resource_metadata"], 2000),
		}
		if acr := strings.Fields(clean(params["acr_values"], 1000)); len(acr) > 0 {
			ch.ACRValues = acr
		}
		if s, ok := params["max_age"]; ok {
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil || n < 0 {
				continue // a challenge that cannot be followed
			}
			ch.MaxAge = n
		}
		return ch, true
	}
	return nil, false
}

// bearerParams parses `Bearer name=value, name="quoted \" value"` (RFC
// 9110 section 11.6.1): the first challenge of the value, when its scheme
// is Bearer.
func bearerParams(h string) (map[string]string, bool) {
	h = strings.TrimSpace(h)
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return nil, false
	}
	params := map[string]string{}
	s := rest
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return params, true
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || strings.ContainsAny(s[:eq], " \t,\"") {
			return params, true // another challenge begins
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					b.WriteByte(s[i])
					continue
				}
				if s[i] == '"' {
					break
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, false // unterminated
			}
			val, s = b.String(), s[i+1:]
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		if _, dup := params[name]; !dup {
			params[name] = val
		}
	}
}

// ProtectedResource reads the server's protected resource metadata (RFC
// 9728): which provider's ID tokens the people API accepts, and the
// client `stepgate login` signs in with.
func (c *Client) ProtectedResource(ctx context.Context) (*api.ProtectedResource, error) {
	return get[api.ProtectedResource](ctx, c, api.PathProtectedResource)
}

// Me returns the account the ID token is linked to.
func (c *Client) Me(ctx context.Context) (*api.Me, error) {
	return get[api.Me](ctx, c, api.PathPeopleMe)
}

// ReviewList returns the pending checks the person may answer.
func (c *Client) ReviewList(ctx context.Context) (*api.ReviewList, error) {
	return get[api.ReviewList](ctx, c, api.PathPeopleChecks)
}

// ReviewCheck returns one check as a reviewer sees it.
func (c *Client) ReviewCheck(ctx context.Context, id string) (*api.Check, error) {
	p, err := checkPath(api.PathPeopleChecks, id)
	if err != nil {
		return nil, err
	}
	return get[api.Check](ctx, c, p)
}

// Approve approves the check for the plan whose sha256 the person
// reviewed. An answer of 401 with Challenge.Error
// "insufficient_user_authentication" asks for a stronger or more recent
// sign-in.
func (c *Client) Approve(ctx context.Context, id, planSHA256 string) (*api.Check, error) {
	return c.answer(ctx, id, "approve", api.AnswerRequest{PlanSHA256: planSHA256})
}

// Reject rejects the check, with a reason the requester reads.
func (c *Client) Reject(ctx context.Context, id, planSHA256, reason string) (*api.Check, error) {
	return c.answer(ctx, id, "reject", api.AnswerRequest{PlanSHA256: planSHA256, Reason: reason})
}

func (c *Client) answer(ctx context.Context, id, verb string, req api.AnswerRequest) (*api.Check, error) {
	p, err := checkPath(api.PathPeopleChecks, id)
	if err != nil {
		return nil, err
	}
	var out api.Check
	if err := c.post(ctx, p+"/"+verb, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
