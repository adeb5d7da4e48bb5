// Package ciclaims owns the one shape in which stepgate reads the verified
// claims of a CI identity (a GitHub Actions or GitLab CI OIDC token, or a
// generic issuer's): repository, ref, whether the ref is protected, the
// event, the run... whatever CI system issued them. The policy input
// (input.pipeline), and integrations that match checks to runs, read this
// shape and never the raw claims of one system.
//
// Only claims that were verified (a CI token's signature, issuer,
// audience and time checked by package ciauth) may be normalised for
// anything that decides: what a request says of its pipeline is a claim,
// not an identity.
package ciclaims
