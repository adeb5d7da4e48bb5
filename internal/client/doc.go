// Package client is the Go client of stepgate's JSON API (package api): what
// `stepgate check` and `stepgate apply` use to create and wait on checks,
// consume grants and report outcomes. It owns the HTTP side of that
// conversation: authentication, timeouts, size limits and turning error
// answers into *Error values.
package client
