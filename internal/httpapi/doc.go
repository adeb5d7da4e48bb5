// Package httpapi owns stepgate's HTTP surface for machines: the JSON API
// under /v1/ that pipelines call, the OpenID discovery document and JWKS
// that verify grants, health and readiness, and Prometheus metrics. Every
// route is listed in routes.go.
package httpapi
