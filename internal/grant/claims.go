package grant

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Decisions a grant can carry.
const (
	DecisionAllow  = "allow"
	DecisionStepUp = "step_up"
)

// Claims of a grant. Standard: iss, sub (check id), aud, iat, nbf, exp, jti.
type Claims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"` // the check id, or the subject template's result (server.grant_subject)
	Audience  jwt.Audience     `json:"aud"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	Expiry    *jwt.NumericDate `json:"exp"`
	ID        string           `json:"jti"`
	// CheckID is the check the grant is for. Grants issued before it existed
	// carry the check id in sub only: use Check().
	CheckID string `json:"check_id,omitempty"`

	PlanSHA256     string            `json:"plan_sha256,omitempty"`      // the JSON plan
	PlanFileSHA256 string            `json:"plan_file_sha256,omitempty"` // the saved binary plan
	Workspace      string            `json:"workspace"`
	Environment    string            `json:"environment,omitempty"`
	Kind           string            `json:"kind"`
	Pipeline       map[string]string `json:"pipeline,omitempty"`
	Requester      string            `json:"requester"`
	Approvals      []Approval        `json:"approvals,omitempty"`
	Decision       string            `json:"decision"`        // allow or step_up
	Rules          []string          `json:"rules,omitempty"` // the rule ids behind the decision
	AAL            int               `json:"aal,omitempty"`   // the lowest level among the approvals (what every approver reached)
	AMR            []string          `json:"amr,omitempty"`   // union of the approvals' methods
	// Secrets are the names of the secrets the grant releases, each once,
	// in the order the check named them: what a Vault role's bound_claims
	// or a cloud's conditions can match (docs/secrets.md).
	Secrets []string `json:"secrets,omitempty"`
	// AWSTags are AWS STS session tags (server.grant_aws_session_tags):
	// AssumeRoleWithWebIdentity turns them into aws:PrincipalTag, which a
	// trust policy checks as aws:RequestTag (docs/cloud-trust.md).
	AWSTags *AWSSessionTags `json:"https://aws.amazon.com/tags,omitempty"`
}

// AWSTagsClaim is the claim AWS STS reads session tags from.
const AWSTagsClaim = "https://aws.amazon.com/tags"

// AWSSessionTags is the value of the https://aws.amazon.com/tags claim:
// each principal tag has a list of exactly one value, and the transitive
// tag keys persist through role chaining.
type AWSSessionTags struct {
	PrincipalTags     map[string][]string `json:"principal_tags"`
	TransitiveTagKeys []string            `json:"transitive_tag_keys,omitempty"`
}

// Approval is one human's approval as the grant records it.
type Approval struct {
	Subject string   `json:"sub"`
	AAL     int      `json:"aal"`
	AMR     []string `json:"amr"`
	Time    int64    `json:"time"` // unix seconds of the proof
}

// check reports the first problem that makes c unfit to be a grant: a
// missing registered claim, an empty audience, times out of order, or a
// decision other than allow or step_up. Sign and Verify share it.
func (c *Claims) check() error {
	switch {
	case c.Issuer == "":
		return fmt.Errorf("missing issuer (iss)")
	case c.Subject == "":
		return fmt.Errorf("missing subject (sub)")
	case len(c.Audience) == 0:
		return fmt.Errorf("missing audience (aud)")
	case c.Expiry == nil:
		return fmt.Errorf("missing expiry (exp)")
	case c.ID == "":
		return fmt.Errorf("missing id (jti)")
	}
	for _, a := range c.Audience {
		if a == "" {
			return fmt.Errorf("empty audience (aud) value")
		}
	}
	if c.IssuedAt != nil && *c.IssuedAt > *c.Expiry {
		return fmt.Errorf("issued (iat) after expiry (exp)")
	}
	if c.NotBefore != nil && *c.NotBefore > *c.Expiry {
		return fmt.Errorf("not before (nbf) after expiry (exp)")
	}
	if c.Decision != DecisionAllow && c.Decision != DecisionStepUp {
		return fmt.Errorf("decision %s is not %s or %s", clip(c.Decision), DecisionAllow, DecisionStepUp)
	}
	return nil
}

// Minimum size of an RSA key that signs or verifies a grant.
const minRSABits = 2048

// Algorithm returns the JOSE algorithm a grant signed with key uses: EdDSA
// for an ed25519.PrivateKey, RS256 for an *rsa.PrivateKey of at least 2048
// bits. Any other key is an error.
func Algorithm(key crypto.Signer) (string, error) {
	switch k := key.(type) {
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return "", fmt.Errorf("not an Ed25519 private key")
		}
		return string(jose.EdDSA), nil
	case *rsa.PrivateKey:
		if k == nil || k.N == nil || k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("RSA private key smaller than %d bits", minRSABits)
		}
		return string(jose.RS256), nil
	}
	return "", fmt.Errorf("unsupported signing key %T (want ed25519.PrivateKey or *rsa.PrivateKey)", key)
}

// Sign returns c as a compact JWS: header alg (EdDSA for an Ed25519 key,
// RS256 for an RSA key of at least 2048 bits), kid, typ JWT. It refuses
// claims missing iss, sub, aud, exp or jti, with nbf or iat after exp, or
// with a decision other than allow or step_up.
func Sign(kid string, key crypto.Signer, c *Claims) (string, error) {
	if kid == "" {
		return "", fmt.Errorf("signing grant: missing key id")
	}
	alg, err := Algorithm(key)
	if err != nil {
		return "", fmt.Errorf("signing grant: %w", err)
	}
	if c == nil {
		return "", fmt.Errorf("signing grant: no claims")
	}
	if err := c.check(); err != nil {
		return "", fmt.Errorf("signing grant: %w", err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("signing grant: encoding claims: %w", err)
	}
	jwk := jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jwk},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return "", fmt.Errorf("signing grant: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("signing grant: %w", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("signing grant: %w", err)
	}
	return tok, nil
}

// Check returns the id of the check a grant is for.
func (c *Claims) Check() string {
	if c.CheckID != "" {
		return c.CheckID
	}
	return c.Subject
}
