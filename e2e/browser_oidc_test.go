package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stepgate/stepgate/internal/authn/oidc/oidctest"
)

// TestBrowserOIDC is sign-in and approval through the organisation's
// OpenID Connect provider, end to end: a real provider (oidctest, in the
// test process), the real binary started with server.oidc, and a real
// headless Chromium. A person signs in with the provider (the account is
// created from preferred_username, the provider's groups make them an
// approver); a pipeline waits on a production IAM plan; the person
// approves by signing in again, first too weakly (refused, nothing
// recorded), then strongly enough: the waiting check gets its grant.
func TestBrowserOIDC(t *testing.T) {
	top := t
	b := startBrowser(t)
	dir := t.TempDir()

	// The provider must know the callback before the server starts, and
	// the server discovers the provider when it starts: take a free port
	// for the server first.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	publicURL := "http://localhost:" + port
	provider := oidctest.Start(t, publicURL+"/oidc/callback")

	const name = "Example SSO"
	secret := filepath.Join(dir, "oidc-secret")
	if err := os.WriteFile(secret, []byte(oidctest.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "stepgate.yaml")
	yaml := fmt.Sprintf(`server:
  oidc:
    name: %s
    issuer: %s
    client_id: %s
    client_secret_file: %s
    groups_claim: groups
    groups:
      platform-admins: [approvers]
    acr:
      2: urn:example:mfa
      3: phr
`, name, provider.URL, oidctest.ClientID, secret)
	if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startWebServerOn(t, dir, "sqlite://"+filepath.Join(dir, "stepgate.db"), "127.0.0.1:"+port, "--config", config)
	if s.url != publicURL {
		t.Fatalf("public URL %s, want %s (the provider's redirect URI)", s.url, publicURL)
	}
	alice := b.newPerson("alice", s)
	groups := []string{"platform-admins", "unmapped"}

	start := time.Now()
	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		began := time.Now()
		ok := t.Run(name, f)
		t.Logf("%-28s %6.2f s", name, time.Since(began).Seconds())
		if !ok {
			t.FailNow()
		}
	}
	defer func() { t.Logf("whole scenario: %.2f s", time.Since(start).Seconds()) }()

	step("signs_in_with_provider", func(t *testing.T) {
		provider.SetNext(oidctest.Login{AMR: []string{"pwd"}, Groups: groups})
		signIn := `form[action="/signin/oidc"] button[type="submit"]`
		alice.open(t, s.url+"/signin", signIn)
		if got := eval[string](t, alice, "reading the button", `document.querySelector('form[action="/signin/oidc"] button').textContent`); got != "Sign in with "+name {
			alice.fail(t, "the sign-in button says %q, want %q", got, "Sign in with "+name)
		}
		alice.do(t, "clicking Sign in with "+name, 10*time.Second, chromedp.Click(chromedp.CSS(signIn), chromedp.NodeVisible))
		alice.at(t, "signing in at the provider", "/checks")
		if req := provider.LastRequest(); first(req, "prompt") != "" || first(req, "nonce") == "" || first(req, "code_challenge_method") != "S256" {
			t.Errorf("the sign-in's authorization request %v: want a nonce, PKCE S256 and no prompt", req)
		}

		alice.open(t, s.url+"/account", "main dl.facts")
		txt := alice.text(t)
		if !strings.Contains(txt, "test-user2") || !strings.Contains(txt, "approvers") || strings.Contains(txt, "unmapped") {
			alice.fail(t, "the account page should show the account test-user2 (preferred_username) in the group approvers only")
		}
		_, st := s.domain()
		u, err := st.GetUserByName(context.Background(), "test-user2")
		if err != nil {
			t.Fatalf("the account created at sign-in: %v", err)
		}
		if !slices.Equal(u.Groups, []string{"approvers"}) || !slices.Equal(u.Links, []string{"oidc:id2"}) || u.Admin {
			t.Fatalf("account test-user2: groups %q, links %q, admin %v; want [approvers], [oidc:id2], not admin", u.Groups, u.Links, u.Admin)
		}
	})

	var iam *background
	var iamID string
	step("pipeline_waits_on_prod_iam", func(t *testing.T) {
		env := pipelineEnv(s.server, s.token("billing-ci"))
		iam = startCheck(t, dir, env, "--plan", repo(t, "examples/prod-iam.plan.json"), "--workspace", "billing-prod", "--wait", "90s")
		top.Cleanup(iam.stop) // it waits on into the next steps
		iamID = iam.id(t)
		t.Logf("check %s is waiting", iamID)
	})

	approve := fmt.Sprintf(`form[action="/checks/%s/approve/oidc"] button[type="submit"]`, iamID)
	var maxAge string
	step("weak_reauthentication_refused", func(t *testing.T) {
		svc, _ := s.domain()
		c, _, err := svc.Review(context.Background(), iamID)
		if err != nil {
			t.Fatal(err)
		}
		req := c.Assessment.Requirements
		if req == nil || req.AAL != 3 {
			t.Fatalf("the check's requirements %+v, want level 3", req)
		}
		maxAge = "300" // the web UI's default for a check without max_age
		if req.MaxAge > 0 {
			maxAge = strconv.Itoa(req.MaxAge)
		}

		alice.open(t, s.url+"/checks/"+iamID, approve)
		v := readReview(t, alice)
		if v.State != "pending" || !strings.Contains(v.Who, "billing-ci") || strings.Contains(v.Who, "(you)") {
			alice.fail(t, "state %q, who asked %q; want pending, asked by billing-ci (not alice)", v.State, v.Who)
		}
		if got := eval[string](t, alice, "reading the button", fmt.Sprintf(`document.querySelector(%q).textContent`, approve)); got != "Approve by signing in again with "+name {
			alice.fail(t, "the approve button says %q, want %q", got, "Approve by signing in again with "+name)
		}
		// Level 2 only: acr_values asked for phr, the provider answered
		// with the level 2 acr and a one-time code.
		provider.SetNext(oidctest.Login{ACR: "urn:example:mfa", AMR: []string{"pwd", "otp"}, Groups: groups})
		alice.do(t, "clicking Approve by signing in again", 10*time.Second, chromedp.Click(chromedp.CSS(approve), chromedp.NodeVisible))
		alice.until(t, "coming back from the provider", `(() => {
			if (location.pathname === "/oidc/callback" && document.readyState === "complete") return "ok";
			return location.pathname + location.search + " (" + document.readyState + ")";
		})()`, 20*time.Second)
		checkStepUpRequest(t, provider.LastRequest(), maxAge)
		txt := alice.text(t)
		if !strings.Contains(txt, "this check needs level 3") || !strings.Contains(txt, "reached level 2") || !strings.Contains(txt, "Nothing was recorded") {
			alice.fail(t, "after a level 2 re-authentication the page should say the level 2 reached is not the level 3 needed, and that nothing was recorded")
		}

		alice.open(t, s.url+"/checks/"+iamID, approve)
		v = readReview(t, alice)
		if v.State != "pending" || len(v.Answers) != 0 || !strings.Contains(v.Needs, "0 of 1") {
			alice.fail(t, "after the refused re-authentication: state %q, answers %q; want still pending with no answer", v.State, v.Answers)
		}
		select {
		case <-iam.done:
			t.Fatalf("the waiting check ended after a refused approval:\n%s", iam.output())
		default:
		}
	})

	step("strong_reauthentication_approves", func(t *testing.T) {
		// Level 3: the acr configured for it, a key and several factors,
		// auth_time the moment of this login.
		provider.SetNext(oidctest.Login{ACR: "phr", AMR: []string{"hwk", "mfa"}, Groups: groups})
		clicked := time.Now()
		alice.do(t, "clicking Approve by signing in again", 10*time.Second, chromedp.Click(chromedp.CSS(approve), chromedp.NodeVisible))
		alice.at(t, "approving by signing in again", "/checks/"+iamID+"?done=approved")
		checkStepUpRequest(t, provider.LastRequest(), maxAge)
		v := readReview(t, alice)
		if v.State != "approved" || v.Notice != "Your approval is recorded." || len(v.Answers) != 1 ||
			!strings.Contains(v.Answers[0], "test-user2") || !strings.Contains(v.Answers[0], "level 3") {
			alice.fail(t, "after approving: state %q, notice %q, answers %q; want approved, recorded, test-user2 at level 3", v.State, v.Notice, v.Answers)
		}
		if code := iam.wait(t, 20*time.Second); code != 0 {
			t.Fatalf("the waiting check exited %d after the approval, want 0\n%s", code, iam.output())
		}
		t.Logf("the waiting check exited 0 %.2f s after the click on Approve", time.Since(clicked).Seconds())
		if !fileExists(filepath.Join(dir, "stepgate.grant")) {
			t.Fatalf("no grant written to stepgate.grant:\n%s", iam.output())
		}

		_, st := s.domain()
		approvals, err := st.ListApprovals(context.Background(), iamID)
		if err != nil {
			t.Fatal(err)
		}
		var evidence struct{ Method, Sub, ACR string }
		if len(approvals) == 1 {
			if err := json.Unmarshal(approvals[0].Evidence, &evidence); err != nil {
				t.Fatalf("the approval's evidence %s: %v", approvals[0].Evidence, err)
			}
		}
		if len(approvals) != 1 || approvals[0].Subject != "test-user2" || approvals[0].AAL != 3 ||
			evidence.Method != "oidc" || evidence.Sub != "id2" || evidence.ACR != "phr" {
			t.Fatalf("approvals of %s: %+v; want one by test-user2 at level 3 with the OIDC evidence of sub id2, acr phr", iamID, approvals)
		}
	})
}

func first(q map[string][]string, key string) string {
	if len(q[key]) == 0 {
		return ""
	}
	return q[key][0]
}

// checkStepUpRequest checks the authorization request of a
// re-authentication: prompt=login, the check's max_age, and the acr value
// configured for level 3.
func checkStepUpRequest(t *testing.T, req map[string][]string, maxAge string) {
	t.Helper()
	if first(req, "prompt") != "login" || first(req, "max_age") != maxAge || first(req, "acr_values") != "phr" || first(req, "nonce") == "" {
		t.Errorf("the re-authentication's authorization request %v: want prompt=login, max_age=%s, acr_values=phr and a nonce", req, maxAge)
	}
}
