// Package httpapi owns stepgate's HTTP surface for machines: the JSON API
// under /v1/ that pipelines call, the OpenID discovery document and JWKS
// that verify grants, health and readiness, and Prometheus metrics. With
// server.oidc it also serves people (people.go): review, approval and
// rejection with an ID token of the organisation's provider, RFC 9470
// step-up challenges, and the RFC 9728 protected resource metadata. Every
// route is listed in routes.go.
package httpapi
