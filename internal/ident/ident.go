package ident

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
)

// ErrInvalid: the name cannot be an identity's name.
var ErrInvalid = errors.New("invalid name")

// MaxLength caps a name, in bytes of its canonical form.
const MaxLength = 256

// Name returns the canonical form of an identity's name (a person's or a
// token's): the PRECIS UsernameCaseMapped profile of RFC 8265. Names with
// spaces, control characters or nothing in them are refused.
func Name(s string) (string, error) {
	c, err := precis.UsernameCaseMapped.String(strings.TrimSpace(s))
	switch {
	case err == nil && c == "":
		return "", fmt.Errorf("%w: a name cannot be empty", ErrInvalid)
	case err != nil:
		return "", fmt.Errorf("%w %q: letters, digits and punctuation without spaces (%w)", ErrInvalid, s, err)
	case len(c) > MaxLength:
		return "", fmt.Errorf("%w %q: longer than %d bytes", ErrInvalid, s, MaxLength)
	}
	return c, nil
}

// fold is the canonical form of a name that Name refuses (one stored before
// names were checked, say): case-folded and NFKC-normalised, so that Same
// still finds two spellings of one name the same.
func fold(s string) string {
	return norm.NFKC.String(cases.Fold().String(norm.NFKC.String(strings.TrimSpace(s))))
}

// Key is s in the form Same compares: its canonical form, or for a name
// Name refuses, its case-folded NFKC form. Look names up by their Key.
func Key(s string) string {
	if c, err := Name(s); err == nil {
		return c
	}
	return fold(s)
}

// Same reports whether a and b name the same identity. An empty name is
// nobody's: it is never the same as anything.
func Same(a, b string) bool {
	if strings.TrimSpace(a) == "" || strings.TrimSpace(b) == "" {
		return false
	}
	return Key(a) == Key(b)
}

// caseInsensitive are the systems whose account names are compared without
// regard to case.
var caseInsensitive = map[string]bool{
	"github": true, // logins are unique regardless of case
	"gitlab": true, // usernames are unique regardless of case
}

// Link returns the canonical form of a link "system:account": the system in
// lower case; the account case-folded where that system ignores case, and
// exactly as given elsewhere (an OpenID Connect subject).
func Link(s string) (string, error) {
	system, account, ok := strings.Cut(strings.TrimSpace(s), ":")
	system = strings.ToLower(strings.TrimSpace(system))
	if !ok || system == "" || account == "" {
		return "", fmt.Errorf("%w: link %q is not system:account, as in github:alice", ErrInvalid, s)
	}
	if !caseInsensitive[system] {
		return system + ":" + account, nil
	}
	c, err := Name(account)
	if err != nil {
		return "", fmt.Errorf("link %q: %w", s, err)
	}
	return system + ":" + c, nil
}

// CISystem maps the name a CI identity gives its system (github-actions,
// gitlab-ci, hcp-terraform) to the system of links (github, gitlab, hcp).
func CISystem(system string) string {
	switch system {
	case "github-actions":
		return "github"
	case "gitlab-ci":
		return "gitlab"
	case "hcp-terraform":
		return "hcp"
	}
	return system
}
