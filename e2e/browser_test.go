package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/stepgate/stepgate/internal/plan/planfile/planfiletest"
)

// TestBrowserApprovals is the people's side end to end, in a real headless
// Chromium with a DevTools virtual authenticator per person: the first
// admin and a second approver enroll passkeys from their links; a pipeline
// waits on a production IAM plan; the approver signs in, reads the review
// page and approves with a passkey; the waiting check gets its grant and
// apply runs. Then: the requester's own approval is refused, a reused
// TOTP code is refused, and a rejection makes the waiting check exit 4.
func TestBrowserApprovals(t *testing.T) {
	top := t
	b := startBrowser(t)
	dir := t.TempDir()
	s := startWebServer(t, dir, "sqlite://"+filepath.Join(dir, "stepgate.db"))
	if !strings.HasPrefix(s.url, "http://localhost:") {
		t.Fatalf("public URL %s: the passkey tests need http://localhost:PORT", s.url)
	}
	if s.enrollLink == "" || !strings.HasPrefix(s.enrollLink, s.url+"/enroll/") {
		t.Fatalf("serve --dev printed no enrollment link for the first admin under %s:\n%s", s.url, s.log)
	}
	admin := b.newPerson("admin", s)
	bob := b.newPerson("bob", s)

	prodIAM := repo(t, "examples/prod-iam.plan.json")
	rgProd := repo(t, "examples/billing-rg-prod.plan.json")
	tfplan := filepath.Join(dir, "tfplan")
	// The server compares the saved plan with the JSON.
	planfiletest.WriteFor(t, prodIAM, tfplan)
	var env []string // the pipeline's: server and token

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

	step("admin_enrolls_passkey", func(t *testing.T) {
		enrollPasskey(t, admin, s.enrollLink, "admin", "Admin laptop", "enroll.png")
	})

	step("bob_enrolls_passkey", func(t *testing.T) {
		r := run(t, dir, []string{"STEPGATE_PUBLIC_URL=" + s.url}, "users", "add", "bob", "--group", "approvers", "--database", s.database)
		bobLink := strings.TrimSpace(r.stdout)
		if r.code != 0 || !strings.HasPrefix(bobLink, s.url+"/enroll/") || strings.Contains(bobLink, "\n") {
			t.Fatalf("users add bob: exit %d, stdout %q; want the enrollment link alone on one line\n%s", r.code, r.stdout, r.stderr)
		}
		enrollPasskey(t, bob, bobLink, "bob", "Bob's phone", "")
		// The link works once.
		bob.open(t, bobLink, "main h1")
		if txt := bob.text(t); !strings.Contains(txt, "already used") {
			bob.fail(t, "opening the enrollment link a second time: want a page saying it was already used")
		}
		// Bob signs out, to sign in with his passkey later.
		bob.open(t, s.url+"/account", `form[action="/signout"] button`)
		bob.do(t, "clicking Sign out", 10*time.Second, chromedp.Click(chromedp.CSS(`form[action="/signout"] button`), chromedp.NodeVisible))
		bob.at(t, "signing out", "/signin?done=signedout")
		bob.open(t, s.url+"/checks", `button[data-passkey="login"]`) // signed out: the sign-in page
	})

	var iam *background
	var iamID string
	step("pipeline_waits_on_prod_iam", func(t *testing.T) {
		r := run(t, dir, nil, "tokens", "create", "--name", "billing-ci", "--database", s.database)
		token := strings.TrimSpace(r.stdout)
		if r.code != 0 || !strings.HasPrefix(token, "sgt_") {
			t.Fatalf("tokens create: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
		}
		env = pipelineEnv(s.server, token)
		iam = startCheck(t, dir, env, "--plan", prodIAM, "--plan-file", tfplan, "--workspace", "billing-prod", "--wait", "90s")
		top.Cleanup(iam.stop) // it waits on into the next step
		iamID = iam.id(t)
		t.Logf("check %s is waiting", iamID)
	})

	step("bob_reviews_and_approves_with_passkey", func(t *testing.T) {
		bob.open(t, s.url+"/signin", `button[data-passkey="login"]`)
		bob.do(t, "clicking Sign in with a passkey", 10*time.Second, chromedp.Click(chromedp.CSS(`button[data-passkey="login"]`), chromedp.NodeVisible))
		bob.at(t, "signing in with a passkey", "/checks")

		link := fmt.Sprintf(`a.check-link[href="/checks/%s"]`, iamID)
		bob.do(t, "finding the waiting check on /checks", 10*time.Second, chromedp.WaitVisible(chromedp.CSS(link)))
		if txt := bob.text(t); !strings.Contains(txt, "billing-prod") || !strings.Contains(txt, "asked by billing-ci") {
			bob.fail(t, "the list of checks does not show the workspace billing-prod asked by billing-ci")
		}
		bob.do(t, "opening the check", 10*time.Second, chromedp.Click(chromedp.CSS(link), chromedp.NodeVisible))
		bob.at(t, "opening the review page", "/checks/"+iamID)
		bob.do(t, "waiting for the review page", 10*time.Second, chromedp.WaitVisible(chromedp.CSS(`button[data-passkey="approve"]`)))

		v := readReview(t, bob)
		if len(v.Sections) == 0 || v.Sections[0] != "needs" || !inOrder(v.Sections, "needs", "findings", "risky", "all", "who", "answer") {
			bob.fail(t, "sections in the order %q; want the decision and what it needs first, then findings, risky changes, all changes, who asked, the answer", v.Sections)
		}
		for _, want := range []string{"Decision: needs approval", "level 3: a passkey with user verification", "1 from people other than the requester", "0 of 1", "Time left"} {
			if !strings.Contains(v.Needs, want) {
				bob.fail(t, "the decision box says %q; want it to contain %q", v.Needs, want)
			}
		}
		if v.State != "pending" || !strings.Contains(v.Heading, "billing-prod") {
			bob.fail(t, "heading %q, state %q; want billing-prod, pending", v.Heading, v.State)
		}
		// The finding says what was found, in the words of eval's report.
		if !slices.ContainsFunc(v.Findings, func(f string) bool {
			return strings.Contains(f, "identity.escalation") && strings.Contains(f, "aws_iam_role_policy.deployer allows s3:* on * (was s3:GetObject on arn:aws:s3:::billing-invoices/*)")
		}) {
			bob.fail(t, "findings %q; want identity.escalation saying what the policy now allows", v.Findings)
		}
		var policyRow *reviewRow
		for _, c := range v.Risky {
			if c.Address != "aws_iam_role_policy.deployer" {
				continue
			}
			if c.Action != "update" {
				bob.fail(t, "the risky change %s is shown as %q; want update", c.Address, c.Action)
			}
			// The policy document is diffed inside: the row of its
			// action, not two whole documents.
			for i := range c.Rows {
				if strings.HasPrefix(c.Rows[i].Path, "policy › Statement[0].Action") {
					policyRow = &c.Rows[i]
				}
			}
		}
		if policyRow == nil {
			bob.fail(t, "risky changes %+v; want aws_iam_role_policy.deployer with a before/after row for the policy's action", v.Risky)
		}
		if policyRow.Before != `"s3:GetObject"` || policyRow.After != `"s3:*"` {
			bob.fail(t, "the policy diff shows before %s, after %s; want \"s3:GetObject\" before and \"s3:*\" after", policyRow.Before, policyRow.After)
		}
		for _, want := range []string{"billing-ci", "billing-prod", sha(t, tfplan)} {
			if !strings.Contains(v.Who, want) {
				bob.fail(t, "who asked: %q; want it to contain %q", v.Who, want)
			}
		}
		// The review page down to the end of the risky changes, with the
		// policy's before and after.
		bob.keepScreenshot(t, "review.png", bob.screenshotThrough(t, `section[aria-labelledby="risky"]`))

		// On a phone: nothing wider than the screen, the buttons in reach.
		bob.do(t, "showing the review page on a phone", 15*time.Second,
			chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(3)),
			chromedp.Reload(),
			chromedp.WaitVisible(chromedp.CSS(`button[data-passkey="approve"]`)))
		if wide := eval[string](t, bob, "measuring the page on a phone", phoneOverflowJS); wide != "" {
			bob.fail(t, "on a 390 px wide phone screen, these are wider than the screen: %s", wide)
		}
		bob.do(t, "back to the laptop screen", 15*time.Second, chromedp.EmulateViewport(screenW, screenH), chromedp.Reload(),
			chromedp.WaitVisible(chromedp.CSS(`button[data-passkey="approve"]`)))

		clicked := time.Now()
		bob.do(t, "clicking Approve with a passkey", 10*time.Second, chromedp.Click(chromedp.CSS(`button[data-passkey="approve"]`), chromedp.NodeVisible))
		bob.at(t, "approving with a passkey", "/checks/"+iamID+"?done=approved")
		v = readReview(t, bob)
		if v.State != "approved" || v.Notice != "Your approval is recorded." || len(v.Answers) != 1 ||
			!strings.Contains(v.Answers[0], "bob") || !strings.Contains(v.Answers[0], "level 3") {
			bob.fail(t, "after approving: state %q, notice %q, answers %q; want approved, recorded, bob at level 3", v.State, v.Notice, v.Answers)
		}
		if code := iam.wait(t, 20*time.Second); code != 0 {
			t.Fatalf("the waiting check exited %d after the approval, want 0\n%s", code, iam.output())
		}
		t.Logf("the waiting check exited 0 %.2f s after the click on Approve", time.Since(clicked).Seconds())
		if !fileExists(filepath.Join(dir, "stepgate.grant")) {
			t.Fatalf("no grant written to stepgate.grant:\n%s", iam.output())
		}
		r := run(t, dir, env, "apply", "--grant", "stepgate.grant", "--plan-file", tfplan, "--workspace", "billing-prod", "--", "sh", "-c", "echo ok > marker")
		if r.code != 0 {
			t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "marker")); string(got) != "ok\n" {
			t.Fatalf("apply did not run the command: marker = %q", got)
		}
	})

	step("requester_approval_refused", func(t *testing.T) {
		// admin's own token: admin is the requester of what it asks,
		// whatever the pipeline's environment says of itself (shown as
		// unverified claims).
		r := run(t, dir, nil, "tokens", "create", "--name", "admin-laptop", "--owner", "admin", "--database", s.database)
		if r.code != 0 {
			t.Fatalf("tokens create --owner admin: exit %d\n%s", r.code, r.stderr)
		}
		gh := []string{"STEPGATE_SERVER=" + s.url, "STEPGATE_TOKEN=" + strings.TrimSpace(r.stdout),
			"GITHUB_ACTIONS=true", "GITHUB_ACTOR=someone-else", "GITHUB_REPOSITORY=acme/infra", "GITHUB_RUN_ID=1", "GITHUB_SERVER_URL=https://github.com"}
		r = run(t, dir, gh, "check", "--plan", prodIAM, "--workspace", "billing-prod-eu", "--wait", "0s", "--grant-out", "own.grant")
		id := checkID.FindString(r.stdout + r.stderr)
		if r.code != 3 || id == "" {
			t.Fatalf("check with admin's own token: exit %d, want 3 (pending) with a check id\n%s%s", r.code, r.stdout, r.stderr)
		}
		admin.open(t, s.url+"/checks/"+id, "#answer")
		v := readReview(t, admin)
		if !strings.Contains(v.Needs, "1 from people other than the requester") {
			admin.fail(t, "the decision box says %q; want one approval by someone other than the requester (a production IAM change)", v.Needs)
		}
		if !strings.Contains(v.Who, "admin (you)") || !strings.Contains(v.Who, "(unverified)") || !strings.Contains(v.Who, "someone-else") {
			admin.fail(t, "who asked: %q; want admin (you), and the pipeline's own claims marked unverified", v.Who)
		}
		const self = "You asked for this change; someone else must approve it."
		if !strings.Contains(v.Answer, self) || v.ApproveButton || v.TOTPForm {
			admin.fail(t, "the answer box says %q (approve button %v, code form %v); want %q and no way to approve", v.Answer, v.ApproveButton, v.TOTPForm, self)
		}
		// Try anyway: a passkey approval button for this check, as the
		// review page makes them, run by the page's own script.
		eval[bool](t, admin, "adding an approve button", fmt.Sprintf(`(() => {
			const box = document.createElement("div");
			box.setAttribute("data-passkey-box", "");
			box.innerHTML = '<button type="button" id="try-approve" data-passkey="approve" data-begin="/checks/%[1]s/approve/passkey/begin" data-finish="/checks/%[1]s/approve/passkey/finish">Approve anyway</button><p id="try-status" data-passkey-status></p>';
			document.getElementById("answer").append(box);
			return true;
		})()`, id))
		admin.do(t, "clicking the approve button", 10*time.Second, chromedp.Click(chromedp.CSS("#try-approve"), chromedp.NodeVisible))
		admin.until(t, "waiting for the refusal", `(() => {
			const s = document.getElementById("try-status");
			return s && s.classList.contains("error") ? "ok" : (s ? s.textContent : "no status");
		})()`, 10*time.Second)
		if got := eval[string](t, admin, "reading the refusal", `document.getElementById("try-status").textContent`); got != self {
			admin.fail(t, "the refusal says %q, want %q", got, self)
		}
		if n := len(admin.credentials(t)); n != 1 {
			admin.fail(t, "admin's authenticator has %d credentials, want 1", n)
		}
		admin.open(t, s.url+"/checks/"+id, "#answer")
		v = readReview(t, admin)
		if v.State != "pending" || len(v.Answers) != 0 || !strings.Contains(v.Needs, "0 of 1") {
			admin.fail(t, "after the refused attempt: state %q, answers %q; want still pending with no answer", v.State, v.Answers)
		}
		r = run(t, dir, gh, "check", "--plan", prodIAM, "--workspace", "billing-prod-eu", "--wait", "0s", "--grant-out", "own.grant")
		if r.code != 3 || checkID.FindString(r.stdout+r.stderr) != id {
			t.Fatalf("the same check again: exit %d; want 3 and still pending %s\n%s%s", r.code, id, r.stdout, r.stderr)
		}
	})

	step("reused_totp_code_refused", func(t *testing.T) {
		bob.open(t, s.url+"/account", `a[href="/account/add"]`)
		bob.do(t, "clicking Add a factor", 10*time.Second, chromedp.Click(chromedp.CSS(`a[href="/account/add"]`), chromedp.NodeVisible))
		bob.at(t, "opening the add-a-factor page", "/account/add")
		bob.do(t, "waiting for the TOTP key", 10*time.Second, chromedp.WaitVisible(chromedp.CSS("code.secret")), chromedp.WaitVisible(chromedp.CSS(`img[alt^="QR code"]`)))
		shown := eval[string](t, bob, "reading the TOTP key", `document.querySelector("code.secret").textContent`)
		totpSecret := strings.ReplaceAll(shown, " ", "")
		if len(totpSecret) != 32 {
			bob.fail(t, "the TOTP key on the page is %q; want 32 base32 characters (160 bits)", shown)
		}
		enrollCode, err := totp.GenerateCode(totpSecret, time.Now())
		if err != nil {
			t.Fatalf("a code for the key %q: %v", shown, err)
		}
		form := `form[action="/account/totp"] `
		bob.do(t, "entering the first code", 10*time.Second,
			chromedp.SendKeys(chromedp.CSS(form+`input[name="name"]`), "Authenticator"),
			chromedp.SendKeys(chromedp.CSS(form+`input[name="code"]`), enrollCode),
			chromedp.Click(chromedp.CSS(form+`button[type="submit"]`), chromedp.NodeVisible))
		bob.at(t, "saving the authenticator app", "/account?done=added")
		if txt := bob.text(t); !strings.Contains(txt, "The factor is added.") || !strings.Contains(txt, "Authenticator app (TOTP)") {
			bob.fail(t, "the account page does not list the new authenticator app")
		}
		// The enrollment used the current step's code: approve with the
		// next step's (within the accepted skew), and try it again.
		totpCode, err := totp.GenerateCode(totpSecret, time.Now().Add(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}

		first := pendingCheck(t, dir, env, rgProd, "billing")
		approveWithCode(t, bob, s.url, first, totpCode)
		v := readReview(t, bob)
		if v.State != "approved" || v.Notice != "Your approval is recorded." || len(v.Answers) != 1 || !strings.Contains(v.Answers[0], "level 2") {
			bob.fail(t, "after approving with a code: state %q, notice %q, answers %q; want approved by bob at level 2", v.State, v.Notice, v.Answers)
		}
		r := run(t, dir, env, "check", "--plan", rgProd, "--workspace", "billing", "--wait", "10s", "--grant-out", "billing.grant")
		if r.code != 0 {
			t.Fatalf("check after the code approval: exit %d, want 0 with a grant\n%s%s", r.code, r.stdout, r.stderr)
		}

		second := pendingCheck(t, dir, env, rgProd, "billing-eu")
		approveWithCode(t, bob, s.url, second, totpCode)
		v = readReview(t, bob)
		const reused = "That code was already used: each code works once. Wait for the next code in your authenticator app."
		if v.Message != reused || v.State != "pending" || len(v.Answers) != 0 {
			bob.fail(t, "the same code on another check: message %q, state %q, answers %q; want %q and still pending", v.Message, v.State, v.Answers, reused)
		}
		r = run(t, dir, env, "check", "--plan", rgProd, "--workspace", "billing-eu", "--wait", "0s", "--grant-out", "eu.grant")
		if r.code != 3 {
			t.Fatalf("check %s after the reused code: exit %d, want 3 (still pending)\n%s%s", second, r.code, r.stdout, r.stderr)
		}
	})

	step("rejection_exits_4", func(t *testing.T) {
		waiting := startCheck(t, dir, env, "--plan", rgProd, "--workspace", "billing-us", "--wait", "90s", "--grant-out", "us.grant")
		t.Cleanup(waiting.stop)
		id := waiting.id(t)
		bob.open(t, s.url+"/checks/"+id, `form[action$="/reject"] textarea[name="reason"]`)
		const reason = "Not during the billing freeze: retry on Monday."
		bob.do(t, "rejecting with a reason", 10*time.Second,
			chromedp.SendKeys(chromedp.CSS(`form[action$="/reject"] textarea[name="reason"]`), reason),
			chromedp.Click(chromedp.CSS(`form[action$="/reject"] button[type="submit"]`), chromedp.NodeVisible))
		clicked := time.Now()
		bob.at(t, "rejecting", "/checks/"+id+"?done=rejected")
		v := readReview(t, bob)
		if v.State != "rejected" || len(v.Answers) != 1 || !strings.Contains(v.Answers[0], reason) {
			bob.fail(t, "after rejecting: state %q, answers %q; want rejected with the reason", v.State, v.Answers)
		}
		if code := waiting.wait(t, 20*time.Second); code != 4 {
			t.Fatalf("the waiting check exited %d after the rejection, want 4\n%s", code, waiting.output())
		}
		t.Logf("the waiting check exited 4 %.2f s after the click on Reject", time.Since(clicked).Seconds())
		out := waiting.output()
		if !strings.Contains(out, reason) && !strings.Contains(out, "rejected") {
			t.Fatalf("the waiting check's output says neither the reason nor the rejection:\n%s", out)
		}
		if !strings.Contains(out, reason) {
			t.Logf("note: the rejected check does not print the reason:\n%s", out)
		}
		if fileExists(filepath.Join(dir, "us.grant")) {
			t.Fatalf("a rejected check wrote a grant")
		}
	})

	step("audit_verifies_assertions", func(t *testing.T) {
		// With the public URL, verify also re-checks the stored passkey
		// assertions of the approvals against the credentials' keys.
		r := run(t, dir, []string{"STEPGATE_PUBLIC_URL=" + s.url}, "audit", "verify", "--database", s.database)
		if r.code != 0 || !strings.Contains(r.stdout, "audit log intact") || !strings.Contains(r.stdout, "passkey approvals verified: 1\n") {
			t.Fatalf("audit verify: exit %d; want the log intact and bob's one passkey approval verified\n%s%s", r.code, r.stdout, r.stderr)
		}
		t.Logf("audit verify:\n%s%s", r.stdout, r.stderr)
	})
	step("audit_finds_approval_of_another_plan", func(t *testing.T) { editedPlanDigestIsFound(t, dir, s.server) })
}

// enrollPasskey opens an enrollment link and registers a passkey; the
// person is then signed in on their account page.
func enrollPasskey(t *testing.T, p *person, link, name, factor, shot string) {
	t.Helper()
	p.open(t, link, `button[data-passkey="register"]`)
	if txt := p.text(t); !strings.Contains(txt, "Welcome, "+name) {
		p.fail(t, "the enrollment page does not welcome %s", name)
	}
	p.do(t, "naming the passkey", 10*time.Second,
		chromedp.SendKeys(chromedp.CSS(`input[data-passkey-name]`), factor),
		chromedp.Blur(chromedp.CSS(`input[data-passkey-name]`)))
	png := p.screenshot(t)
	if shot != "" {
		p.keepScreenshot(t, shot, png)
	}
	p.do(t, "clicking Register a passkey", 10*time.Second, chromedp.Click(chromedp.CSS(`button[data-passkey="register"]`), chromedp.NodeVisible))
	p.at(t, "registering a passkey", "/account?done=enrolled")
	txt := p.text(t)
	for _, want := range []string{"Your factor is saved and you are signed in", factor, "Passkey", "approvers"} {
		if !strings.Contains(txt, want) {
			p.fail(t, "the account page after enrollment does not say %q", want)
		}
	}
	creds := p.credentials(t)
	if len(creds) != 1 || !creds[0].IsResidentCredential || creds[0].RpID != "localhost" {
		p.fail(t, "the authenticator holds %d credentials (%+v); want one discoverable credential for localhost", len(creds), creds)
	}
}

// pendingCheck asks for a check that waits for people and returns its id.
func pendingCheck(t *testing.T, dir string, env []string, plan, workspace string) string {
	t.Helper()
	r := run(t, dir, env, "check", "--plan", plan, "--workspace", workspace, "--wait", "0s", "--grant-out", workspace+".grant")
	id := checkID.FindString(r.stdout + r.stderr)
	if r.code != 3 || id == "" {
		t.Fatalf("check in %s: exit %d, want 3 (pending) with a check id\n%s%s", workspace, r.code, r.stdout, r.stderr)
	}
	return id
}

// approveWithCode submits a TOTP code on a check's review page.
func approveWithCode(t *testing.T, p *person, base, id, code string) {
	t.Helper()
	form := `form[action="/checks/` + id + `/approve/totp"] `
	p.open(t, base+"/checks/"+id, form+`input[name="code"]`)
	p.do(t, "approving with a code", 10*time.Second,
		chromedp.SendKeys(chromedp.CSS(form+`input[name="code"]`), code),
		chromedp.Click(chromedp.CSS(form+`button[type="submit"]`), chromedp.NodeVisible))
	p.until(t, "submitting the code", fmt.Sprintf(`(() => {
		if (document.readyState !== "complete") return "loading";
		if (location.pathname + location.search === %q) return "ok";
		if (location.pathname === %q && document.querySelector('main p.error[role="alert"]')) return "ok";
		return location.pathname + location.search;
	})()`, "/checks/"+id+"?done=approved", "/checks/"+id+"/approve/totp"), 20*time.Second)
}

// reviewPage is what the review page shows, read in the browser.
type reviewPage struct {
	Sections      []string       `json:"sections"`
	Heading       string         `json:"heading"`
	State         string         `json:"state"`
	Needs         string         `json:"needs"`
	Findings      []string       `json:"findings"`
	Risky         []reviewChange `json:"risky"`
	Who           string         `json:"who"`
	Answer        string         `json:"answer"`
	Answers       []string       `json:"answers"`
	Message       string         `json:"message"`
	Notice        string         `json:"notice"`
	ApproveButton bool           `json:"approveButton"`
	TOTPForm      bool           `json:"totpForm"`
}

type reviewChange struct {
	Address string      `json:"address"`
	Action  string      `json:"action"`
	Rows    []reviewRow `json:"rows"`
}

type reviewRow struct {
	Path   string `json:"path"`
	Before string `json:"before"`
	After  string `json:"after"`
}

const readReviewJS = `(() => {
	const all = (s, root) => [...(root || document).querySelectorAll(s)];
	const txt = (s, root) => { const e = (root || document).querySelector(s); return e ? e.innerText.trim() : ""; };
	return {
		sections: all("main section").map(s => s.id || s.getAttribute("aria-labelledby") || ""),
		heading: txt("main h1"),
		state: txt("main [class*='state-']"),
		needs: txt("section.needs"),
		findings: all("ul.findings > li").map(li => li.innerText.trim()),
		risky: all('section[aria-labelledby="risky"] article.change').map(a => ({
			address: txt("h3 code", a),
			action: txt("h3 .act", a),
			rows: all("table.diff tbody tr", a).map(r => ({
				path: txt("th code", r),
				before: txt('td[data-label="before"]', r),
				after: txt('td[data-label="after"]', r),
			})),
		})),
		who: txt('section[aria-labelledby="who"]'),
		answer: txt("#answer"),
		answers: all("ul.answers > li").map(li => li.innerText.trim()),
		message: txt('main p.error[role="alert"]'),
		notice: txt('main p.notice[role="status"]'),
		approveButton: !!document.querySelector('button[data-passkey="approve"]'),
		totpForm: !!document.querySelector('form[action$="/approve/totp"]'),
	};
})()`

// phoneOverflowJS names the elements that stick out on the right of the
// screen (none: "").
const phoneOverflowJS = `(() => {
	const w = document.documentElement.clientWidth;
	if (document.documentElement.scrollWidth <= w) return "";
	return [...document.querySelectorAll("body *")]
		.filter(e => e.getBoundingClientRect().right > w + 1)
		.slice(0, 5)
		.map(e => e.tagName.toLowerCase() + (e.className ? "." + String(e.className).split(" ").join(".") : "") + " (" + Math.round(e.getBoundingClientRect().right) + " px)")
		.join(", ") || "the page (" + document.documentElement.scrollWidth + " px)";
})()`

func readReview(t *testing.T, p *person) reviewPage {
	t.Helper()
	return eval[reviewPage](t, p, "reading the review page", readReviewJS)
}

// inOrder reports whether want appear in got in this order.
func inOrder(got []string, want ...string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}
