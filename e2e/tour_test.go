package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// TestREADMETour follows the README's tour as a new user with only an
// authenticator app would, through the real binary and plain HTTP: a
// low-risk change granted at once and applied once; the first admin
// enrolled with TOTP; a production change (aal 2) that waits, approved
// with a code by the admin (the pipeline's token is the requester, so the
// admin may), its grant handed to the waiting check, and applied.
func TestREADMETour(t *testing.T) {
	dir := t.TempDir()
	ws := startWebServerOn(t, dir, "sqlite://"+filepath.Join(dir, "stepgate.db"), "127.0.0.1:0")
	s := ws.server
	env := pipelineEnv(s, s.token("billing-ci", "billing-*"))
	devPlan := repo(t, "examples/dev-tag-change.plan.json")
	rgPlan := repo(t, "examples/billing-rg-prod.plan.json")

	// A low-risk change: granted at once, applied once.
	if r := run(t, dir, env, "check", "--plan", devPlan, "--workspace", "billing-dev"); r.code != 0 {
		t.Fatalf("check (low risk): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, dir, env, "apply", "--grant", "stepgate.grant", "--plan", devPlan, "--workspace", "billing-dev", "--", "echo", "applied"); r.code != 0 || !strings.Contains(r.stdout, "applied") {
		t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, dir, env, "apply", "--grant", "stepgate.grant", "--plan", devPlan, "--workspace", "billing-dev", "--", "echo", "never printed"); r.code != 5 {
		t.Fatalf("apply again: exit %d, want 5\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The admin enrolls with an authenticator app, from the link serve
	// --dev printed.
	jar, _ := cookiejar.New(nil)
	admin := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	page := get(t, admin, ws.enrollLink)
	m := regexp.MustCompile(`<code class="secret">([A-Z2-7 ]+)</code>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the enrollment page shows no authenticator key:\n%.500s", page)
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	link, _ := url.Parse(ws.enrollLink)
	code := func(at time.Time) string {
		c, err := totp.GenerateCode(secret, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if res := post(t, admin, s.url, link.Path+"/totp", url.Values{"code": {code(time.Now())}, "name": {"phone"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("enrolling with a code: %d", res.StatusCode)
	}

	// A production change a code can approve waits for people.
	check := startStepgate(t, dir, env, "check", "--plan", rgPlan, "--workspace", "billing-eu", "--wait", "90s", "--grant-out", "rg.grant")
	t.Cleanup(check.stop)
	id := check.id(t)
	review := get(t, admin, s.url+"/checks/"+id)
	if !strings.Contains(review, "billing-ci") || !strings.Contains(review, "rg-billing-prod") {
		t.Fatalf("the review page does not show who asked and why it is production:\n%.800s", review)
	}
	// The admin approves with the next code (the enrollment used this
	// step's).
	res := post(t, admin, s.url, "/checks/"+id+"/approve/totp", url.Values{"code": {code(time.Now().Add(30 * time.Second))}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("approving with a code: %d", res.StatusCode)
	}
	if c := check.wait(t, 60*time.Second); c != 0 {
		t.Fatalf("the waiting check: exit %d\n%s", c, check.output())
	}
	if r := run(t, dir, env, "apply", "--grant", "rg.grant", "--plan", rgPlan, "--", "echo", "applied"); r.code != 0 || !strings.Contains(r.stdout, "applied") {
		t.Fatalf("apply of the approved change: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "rg.grant")); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%.500s", u, res.StatusCode, b)
	}
	return string(b)
}

// post sends a form as the page would: same origin.
func post(t *testing.T, c *http.Client, base, path string, form url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}
