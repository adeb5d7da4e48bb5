// Package ident owns the one canonical form in which stepgate compares the
// names of identities: people, API tokens, and the links of people to their
// accounts elsewhere ("github:alice").
//
// Two names that differ only in case, width or Unicode normalisation name
// the same identity: "Bob", "bob" and "ｂｏｂ" are one person. Names are
// mapped with the PRECIS UsernameCaseMapped profile (RFC 8265: width
// mapping, case folding, NFC), and every comparison that decides who may do
// what (is the approver the requester?) goes through Same.
//
// Links follow the rules of the system they point into: GitHub and GitLab
// logins are case-insensitive, so "github:Bob" and "github:bob" are the same
// account; an OpenID Connect subject is compared exactly.
package ident
