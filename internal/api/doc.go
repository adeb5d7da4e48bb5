// Package api owns the wire format of stepgate's JSON API under /v1/: the
// request and response bodies that the server (package httpapi) writes and
// the client (package client) reads. docs/api.md describes it for people.
package api
