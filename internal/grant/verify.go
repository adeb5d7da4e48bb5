package grant

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Sentinel errors of Verify, checked with errors.Is. The error returned has
// its own message (what was wrong, with the values that matter); these only
// classify it.
var (
	ErrMalformed   = errors.New("grant: malformed")              // not a compact JWS / bad JSON / missing claims
	ErrAlgorithm   = errors.New("grant: algorithm not accepted") // any alg but EdDSA and RS256 (none, HS256, ES256, PS256...)
	ErrUnknownKey  = errors.New("grant: unknown signing key")    // no key with that kid
	ErrSignature   = errors.New("grant: bad signature")
	ErrExpired     = errors.New("grant: expired")
	ErrNotYetValid = errors.New("grant: not yet valid")
	ErrIssuer      = errors.New("grant: wrong issuer")
	ErrAudience    = errors.New("grant: wrong audience")
	ErrWorkspace   = errors.New("grant: wrong workspace")
)

const (
	// maxTokenSize bounds what Verify looks at. A grant with many approvals
	// and pipeline fields is a few KiB.
	maxTokenSize = 64 << 10
	// maxKeyIDSize bounds the kid looked up (ours are 43 characters).
	maxKeyIDSize = 256
	// maxRSABits bounds the RSA keys verified with (a huge modulus from a
	// remote key set would make every verification slow).
	maxRSABits = 8192
)

// accepted are the algorithms Verify accepts.
var accepted = []jose.SignatureAlgorithm{jose.EdDSA, jose.RS256}

// Expect is what Verify checks a grant against.
type Expect struct {
	Issuer    string
	Audience  string
	Workspace string        // "" = do not check
	Now       time.Time     // required: the caller's clock
	Leeway    time.Duration // for iat/nbf/exp, e.g. 30s
}

// verifyError is a failure of Verify: its own message, classified by a
// sentinel, with the underlying cause (if any) still reachable.
type verifyError struct {
	kind  error
	msg   string
	cause error
}

func (e *verifyError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *verifyError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

func fail(kind error, format string, args ...any) error {
	return &verifyError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func failCause(kind error, cause error, format string, args ...any) error {
	return &verifyError{kind: kind, msg: fmt.Sprintf(format, args...), cause: cause}
}

// Verify checks a grant and returns its claims. It accepts only a compact
// JWS with alg EdDSA, signed by an Ed25519 key, or alg RS256, signed by an
// RSA key of 2048 to 8192 bits, that keys returns for the header's kid (a
// key of the other type, or whose JWK alg differs from the header's, is not
// used); a key carried or pointed to by the token itself (jwk, jku,
// x5u, x5c...) is refused. Only once the signature holds does it read the
// claims and check iss, aud (contains want.Audience), exp, nbf and iat (with
// want.Leeway) and the workspace.
//
// Failures wrap one of the Err sentinels. An error from keys (the JWKS could
// not be fetched) is returned wrapped as it is, with no sentinel: the grant
// was not judged. want.Issuer, want.Audience and want.Now are required.
func Verify(ctx context.Context, token string, keys KeySource, want Expect) (*Claims, error) {
	if want.Issuer == "" || want.Audience == "" || want.Now.IsZero() {
		return nil, errors.New("verifying grant: Expect needs Issuer, Audience and Now")
	}
	if keys == nil {
		return nil, errors.New("verifying grant: no key source")
	}

	kid, alg, err := checkHeader(token)
	if err != nil {
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{alg})
	if err != nil {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) { // checkHeader should have caught it
			return nil, failCause(ErrAlgorithm, err, "grant signed with an algorithm other than %s", alg)
		}
		return nil, failCause(ErrMalformed, err, "grant is not a valid JWS")
	}
	if len(jws.Signatures) != 1 || jws.Signatures[0].Protected.KeyID != kid ||
		jws.Signatures[0].Protected.Algorithm != string(alg) {
		return nil, fail(ErrMalformed, "grant is not a single-signature JWS with kid %s", clip(kid))
	}

	found, err := keys.Keys(ctx, kid)
	if err != nil {
		return nil, fmt.Errorf("getting the keys to verify grant (kid %s): %w", clip(kid), err)
	}
	var pubs []crypto.PublicKey
	for _, k := range found {
		if pub, ok := usableKey(k, kid, alg); ok {
			pubs = append(pubs, pub)
		}
	}
	if len(pubs) == 0 {
		return nil, fail(ErrUnknownKey, "no %s key with kid %s to verify the grant", keyType(alg), clip(kid))
	}
	var payload []byte
	for _, pub := range pubs {
		if p, err := jws.Verify(pub); err == nil {
			payload = p
			break
		}
	}
	if payload == nil {
		return nil, fail(ErrSignature, "grant signature does not verify with key %s", clip(kid))
	}

	// The signature holds: from here on the claims are the issuer's.
	c := new(Claims)
	if err := checkObject(payload); err != nil {
		return nil, failCause(ErrMalformed, err, "grant claims are not a JSON object")
	}
	if err := json.Unmarshal(payload, c); err != nil {
		return nil, failCause(ErrMalformed, err, "decoding grant claims")
	}
	if err := c.check(); err != nil {
		return nil, failCause(ErrMalformed, err, "grant claims incomplete")
	}
	if err := checkClaims(c, want); err != nil {
		return nil, err
	}
	return c, nil
}

// checkHeader reads the protected header before anything else touches the
// token, and returns its kid and alg. It allows exactly alg (EdDSA or
// RS256), kid and typ (JWT): every other parameter is refused, first of all
// those that carry or point to a key, and crit/b64, which change what the
// signature means.
func checkHeader(token string) (kid string, _ jose.SignatureAlgorithm, err error) {
	if len(token) > maxTokenSize {
		return "", "", fail(ErrMalformed, "grant is %d bytes, more than the %d allowed", len(token), maxTokenSize)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", "", fail(ErrMalformed, "grant is not a compact JWS (want 3 dot-separated parts, got %d)", len(parts))
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	if err != nil {
		return "", "", fail(ErrMalformed, "grant header is not base64url")
	}
	hdr, err := objectMembers(raw)
	if err != nil {
		return "", "", failCause(ErrMalformed, err, "grant header is not a JSON object")
	}
	rawAlg, ok := hdr["alg"]
	if !ok {
		return "", "", fail(ErrAlgorithm, "grant header has no alg; only EdDSA and RS256 are accepted")
	}
	var algName string
	if err := json.Unmarshal(rawAlg, &algName); err != nil || !slices.Contains(accepted, jose.SignatureAlgorithm(algName)) {
		return "", "", fail(ErrAlgorithm, "grant signed with alg %s; only EdDSA and RS256 are accepted", clip(string(rawAlg)))
	}
	for name := range hdr {
		switch name {
		case "alg", "kid", "typ":
		case "jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256":
			return "", "", fail(ErrMalformed, "grant header carries its own key (%s); keys come only from the issuer's key set", name)
		default:
			return "", "", fail(ErrMalformed, "grant header has unexpected parameter %s", clip(name))
		}
	}
	if err := json.Unmarshal(hdr["kid"], &kid); err != nil || kid == "" {
		return "", "", fail(ErrMalformed, "grant header has no kid")
	}
	if len(kid) > maxKeyIDSize {
		return "", "", fail(ErrMalformed, "grant header kid is longer than %d bytes", maxKeyIDSize)
	}
	var typ string
	if err := json.Unmarshal(hdr["typ"], &typ); err != nil || !strings.EqualFold(typ, "JWT") {
		return "", "", fail(ErrMalformed, "grant header typ is not JWT")
	}
	return kid, jose.SignatureAlgorithm(algName), nil
}

// usableKey returns k's public key when k may verify a grant signed under
// kid with alg: an Ed25519 key for EdDSA, an RSA key of 2048 to 8192 bits
// for RS256, with no other alg stated and no use but sig.
func usableKey(k jose.JSONWebKey, kid string, alg jose.SignatureAlgorithm) (crypto.PublicKey, bool) {
	if k.KeyID != kid {
		return nil, false
	}
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return nil, false
	}
	if k.Use != "" && k.Use != "sig" {
		return nil, false
	}
	switch alg {
	case jose.EdDSA:
		pub, ok := k.Key.(ed25519.PublicKey)
		if !ok || len(pub) != ed25519.PublicKeySize {
			return nil, false
		}
		return pub, true
	case jose.RS256:
		pub, ok := k.Key.(*rsa.PublicKey)
		if !ok || pub == nil || pub.N == nil {
			return nil, false
		}
		if bits := pub.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return nil, false
		}
		return pub, true
	}
	return nil, false
}

// keyType names the key an algorithm needs, for messages.
func keyType(alg jose.SignatureAlgorithm) string {
	if alg == jose.RS256 {
		return "RSA"
	}
	return "Ed25519"
}

func checkClaims(c *Claims, want Expect) error {
	if c.Issuer != want.Issuer {
		return fail(ErrIssuer, "grant issued by %s, want %s", clip(c.Issuer), clip(want.Issuer))
	}
	if !c.Audience.Contains(want.Audience) {
		return fail(ErrAudience, "grant is for audience %s, not %s", clipList(c.Audience), clip(want.Audience))
	}
	now, leeway := want.Now, max(want.Leeway, 0)
	if exp := c.Expiry.Time(); !now.Before(exp.Add(leeway)) {
		return fail(ErrExpired, "grant expired at %s (%s ago)", stamp(exp), human(now.Sub(exp)))
	}
	if c.NotBefore != nil {
		if nbf := c.NotBefore.Time(); now.Add(leeway).Before(nbf) {
			return fail(ErrNotYetValid, "grant not valid before %s (in %s)", stamp(nbf), human(nbf.Sub(now)))
		}
	}
	if c.IssuedAt != nil {
		if iat := c.IssuedAt.Time(); now.Add(leeway).Before(iat) {
			return fail(ErrNotYetValid, "grant issued in the future, at %s (in %s); check the clocks", stamp(iat), human(iat.Sub(now)))
		}
	}
	if want.Workspace != "" && c.Workspace != want.Workspace {
		return fail(ErrWorkspace, "grant is for workspace %s, not %s", clip(c.Workspace), clip(want.Workspace))
	}
	return nil
}

// objectMembers decodes one JSON object into its members, refusing
// duplicate names (which parsers resolve differently) and trailing data.
func objectMembers(b []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("bad member name")
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("duplicate member %s", clip(name))
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out[name] = v
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the object")
	}
	return out, nil
}

func checkObject(b []byte) error {
	_, err := objectMembers(b)
	return err
}

// clip quotes a value that came from the token (or is compared with one),
// cut to a length fit for an error message.
func clip(s string) string {
	const limit = 64
	if len(s) > limit {
		r := []rune(s)
		if len(r) > limit {
			s = string(r[:limit]) + "…"
		}
	}
	return fmt.Sprintf("%q", s)
}

func clipList(ss []string) string {
	const limit = 5
	q := make([]string, 0, min(len(ss), limit)+1)
	for i, s := range ss {
		if i == limit {
			q = append(q, fmt.Sprintf("… %d more", len(ss)-limit))
			break
		}
		q = append(q, clip(s))
	}
	return "[" + strings.Join(q, " ") + "]"
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// human writes a duration to the second, without zero units: 15m, 1h2m, 45s.
func human(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
