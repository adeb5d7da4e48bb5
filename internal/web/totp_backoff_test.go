package web

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/authn/totp"
)

// signInFrom posts a TOTP sign-in as if from the client address addr
// (through a trusted proxy, which says so in X-Forwarded-For).
func (b *browser) signInFrom(t *testing.T, addr, name, code string) *response {
	t.Helper()
	req := b.f.formPost("/signin/totp", url.Values{"username": {name}, "code": {code}})
	req.Header.Set("X-Forwarded-For", addr)
	return b.do(t, req)
}

// wrong is a code that is not bob's current one.
func wrong(right string) string {
	if right == "000000" {
		return "111111"
	}
	return "000000"
}

// TestTOTPBackoffPerAddress: wrong codes slow down the address that sends
// them, for that name, and nobody else: an attacker who knows an
// approver's name cannot lock the approver out. An unknown name gets the
// very same answers as a real one, so names cannot be enumerated.
func TestTOTPBackoffPerAddress(t *testing.T) {
	f := newFixture(t, func(w *Web, _ string) {
		w.cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	f.addUser(t, "bob", "approvers")
	attacker, victim := f.browser(t), f.browser(t)

	var realAnswers, unknownAnswers []string
	for range totp.MaxFailures + 2 {
		res := attacker.signInFrom(t, "203.0.113.66", "bob", wrong(f.code(t, "bob")))
		realAnswers = append(realAnswers, res.status2()+" "+message(res.body))
		res = attacker.signInFrom(t, "203.0.113.66", "nobody-here", wrong(f.code(t, "bob")))
		unknownAnswers = append(unknownAnswers, res.status2()+" "+message(res.body))
	}
	if strings.Join(realAnswers, "\n") != strings.Join(unknownAnswers, "\n") {
		t.Errorf("answers for a real name and an unknown one differ:\nreal:\n%s\nunknown:\n%s", strings.Join(realAnswers, "\n"), strings.Join(unknownAnswers, "\n"))
	}
	// The attacker's address is now slowed down, even with the right code.
	if res := attacker.signInFrom(t, "203.0.113.66", "bob", f.code(t, "bob")); res.status != http.StatusTooManyRequests {
		t.Errorf("the right code from the attacker's address after %d wrong ones = %d, want 429", totp.MaxFailures+2, res.status)
	}
	// Bob, from his own address, signs in at once.
	res := victim.signInFrom(t, "198.51.100.7", "bob", f.code(t, "bob"))
	if res.status != http.StatusSeeOther {
		t.Errorf("bob from his own address after the attack = %d %s, want 303 (signed in)", res.status, message(res.body))
	}
}

func (r *response) status2() string { return http.StatusText(r.status) }

// message is the page's message paragraph, or "".
func message(body string) string {
	i := strings.Index(body, `class="message`)
	if i < 0 {
		i = strings.Index(body, `class="error`)
	}
	if i < 0 {
		return ""
	}
	rest := body[i:]
	if j := strings.Index(rest, "</"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}
