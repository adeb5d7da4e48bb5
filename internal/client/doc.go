// Package client is the Go client of stepgate's JSON API (package api): what
// `stepgate check` and `stepgate apply` use to create and wait on checks,
// consume grants and report outcomes. It owns the HTTP side of that
// conversation: authentication, timeouts, size limits and turning error
// answers into *Error values. The people API (review, approve, reject with
// a person's ID token) is here too, with the parsing of its Bearer
// challenges (RFC 6750, RFC 9470) into *ChallengeError values.
package client
