package api

import (
	"time"

	"github.com/stepgate/stepgate/internal/assessment"
)

// The people API: a person reviews, approves and rejects checks with an ID
// token of the organisation's OpenID Connect provider as the bearer token
// (Authorization: Bearer <ID token>). It exists only when the server has
// server.oidc configured.
const (
	// PathProtectedResource is the server's OAuth protected resource
	// metadata (RFC 9728): where a client learns which provider issues
	// the tokens the people API accepts.
	PathProtectedResource = "/.well-known/oauth-protected-resource"
	// PathPeople prefixes the people API.
	PathPeople       = "/v1/people"
	PathPeopleMe     = PathPeople + "/me"
	PathPeopleChecks = PathPeople + "/checks"
)

// Error codes of the people API, besides the general ones. Both answer
// 401 with a WWW-Authenticate: Bearer challenge of the same error.
const (
	// CodeInvalidToken: the bearer ID token is missing, malformed, expired,
	// or not one of the provider's for stepgate (RFC 6750).
	CodeInvalidToken = "invalid_token"
	// CodeInsufficientUserAuthentication: the token's authentication is too
	// weak or too old for this check; the challenge carries acr_values
	// and max_age to sign in again with (RFC 9470).
	CodeInsufficientUserAuthentication = "insufficient_user_authentication"
)

// ProtectedResource is the body of GET /.well-known/oauth-protected-resource
// (RFC 9728), with stepgate's extension members for its command line.
type ProtectedResource struct {
	// Resource is the server's public URL.
	Resource string `json:"resource"`
	// AuthorizationServers is the OpenID provider's issuer.
	AuthorizationServers   []string `json:"authorization_servers"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	// CLIClientID is the public (native) client `stepgate login` signs in
	// with; empty when the server has none (server.oidc.cli_client_id).
	CLIClientID string `json:"stepgate_cli_client_id,omitempty"`
	// CLIScopes are the scopes it asks for, openid included.
	CLIScopes []string `json:"stepgate_cli_scopes,omitempty"`
}

// Me is the body of GET /v1/people/me: the account the token is linked to
// and what its authentication reached.
type Me struct {
	Name     string    `json:"name"`
	Groups   []string  `json:"groups"`
	Admin    bool      `json:"admin,omitempty"`
	Issuer   string    `json:"iss"`
	Subject  string    `json:"sub"`
	ACR      string    `json:"acr,omitempty"`
	AMR      []string  `json:"amr"`
	AAL      int       `json:"aal"`
	AuthTime time.Time `json:"auth_time"`
}

// ReviewList is the body of GET /v1/people/checks: the pending checks the
// person may answer, newest first.
type ReviewList struct {
	Checks []ReviewItem `json:"checks"`
	// NextPage, when set, is the page parameter of the next page
	// (GET ...?page=N; 50 pending checks a page, newest first).
	NextPage int `json:"next_page,omitempty"`
}

// ReviewItem is one pending check in a ReviewList.
type ReviewItem struct {
	ID           string                   `json:"id"`
	Kind         string                   `json:"kind"`
	Workspace    string                   `json:"workspace"`
	Environment  string                   `json:"environment,omitempty"`
	Requester    string                   `json:"requester"`
	Decision     assessment.Decision      `json:"decision"`
	Requirements *assessment.Requirements `json:"requirements,omitempty"`
	// Findings counts the assessment's findings.
	Findings   int    `json:"findings"`
	PlanSHA256 string `json:"plan_sha256"`
	// Approved counts the approvals recorded so far.
	Approved int `json:"approved"`
	// Mine is true when the person asked for the check: they may confirm
	// it only when nobody else's approval is required.
	Mine      bool      `json:"mine,omitempty"`
	ReviewURL string    `json:"review_url"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// AnswerRequest is the body of POST /v1/people/checks/{id}/approve and
// .../reject. PlanSHA256 is the digest of the plan the person reviewed:
// when it is not the check's, nothing is recorded (409).
type AnswerRequest struct {
	PlanSHA256 string `json:"plan_sha256"`
	// Reason is required to reject; the requester reads it.
	Reason string `json:"reason,omitempty"`
}
