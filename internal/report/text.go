package report

import (
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/stepgate/stepgate/internal/policy"
)

const (
	reset  = "\x1b[0m"
	bold   = "\x1b[1m"
	dim    = "\x1b[2m"
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
)

func writeText(w io.Writer, a *policy.Assessment, opts Options) error {
	paint := func(code, s string) string {
		if !opts.Color {
			return s
		}
		return code + s + reset
	}
	var b strings.Builder
	colour := map[policy.Decision]string{policy.Allow: green, policy.StepUp: yellow, policy.Deny: red}[a.Decision]
	b.WriteString(paint(bold+colour, Headline(a.Decision)))
	switch a.Decision {
	case policy.StepUp:
		b.WriteString("  " + Needs(a.Requirements))
	case policy.Allow:
		b.WriteString("  no rule asks for more")
	}
	b.WriteString("\n")
	if len(a.Findings) > 0 {
		b.WriteString("\n")
	}
	for _, f := range a.Findings {
		mark := map[policy.Decision]string{policy.Deny: paint(red, "✗"), policy.StepUp: paint(yellow, "!"), policy.Allow: paint(green, "·")}[f.Decision]
		fmt.Fprintf(&b, "%s %-8s %s  %s\n", mark, Printable(f.Severity), paint(bold, Printable(f.Rule)), Printable(f.Reason))
		for i, addr := range f.Addresses {
			if i == opts.MaxAddresses {
				fmt.Fprintf(&b, "      %s\n", paint(dim, fmt.Sprintf("… and %d more (--output json lists all)", len(f.Addresses)-i)))
				break
			}
			fmt.Fprintf(&b, "      %s\n", Printable(addr))
		}
	}
	b.WriteString("\n")
	s := a.Summary
	fmt.Fprintf(&b, "Changes:    %s\n", changesLine(s))
	target := "workspace " + Printable(orNone(s.Workspace))
	if s.Environment != "" {
		target += ", environment " + Printable(s.Environment)
	}
	if s.Production {
		target += " · production: " + Printable(strings.Join(s.ProductionReasons, "; "))
	} else {
		target += " · not production"
	}
	fmt.Fprintf(&b, "Operation:  %s, %s\n", s.Kind, target)
	if pl := planLine(a.Plan); pl != "" {
		fmt.Fprintf(&b, "Plan:       %s\n", pl)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Printable makes text from plans, rules and servers safe to show a
// reviewer: control characters (an escape sequence could rewrite what a
// terminal shows) are shown as \x.. escapes, and the characters that change
// how text reads without being seen (bidi overrides and isolates, marks,
// zero-width characters, line and paragraph separators) as \u.... escapes.
func Printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return Hidden(r) || r == '\n' || r == '\t' || r == '\r' }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == '\n' || r == '\t' || r == '\r' {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteString(Escape(r))
	}
	return b.String()
}

// Escape is r as it is shown: itself, or when Hidden, a visible escape
// (\x07 for a control character, \u202e for a format character).
func Escape(r rune) string {
	switch {
	case !Hidden(r):
		return string(r)
	case r < 0x100:
		return fmt.Sprintf("\\x%02x", r)
	}
	return fmt.Sprintf("\\u%04x", r)
}

// Hidden reports whether r is a character a reviewer would not see as
// itself: a control character other than tab, newline and carriage return
// (those are escaped by Printable, and kept by a page's layout), or a
// format character that reorders or hides text: the bidi embeddings,
// overrides, isolates and marks (U+061C, U+200E, U+200F, U+202A-U+202E,
// U+2066-U+2069), zero-width characters (U+200B-U+200D, U+2060, U+FEFF),
// the line and paragraph separators (U+2028, U+2029), and any other
// character of category Cf.
func Hidden(r rune) bool {
	switch {
	case r == '\n' || r == '\t' || r == '\r':
		return false
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		return true
	case r == 0x2028 || r == 0x2029:
		return true
	}
	return r > 0xa0 && unicode.Is(unicode.Cf, r)
}
