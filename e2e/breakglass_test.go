package e2e

import (
	"encoding/json"
	"fmt"
	"github.com/stepgate/stepgate/internal/plan/planfile/planfiletest"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stepgate/stepgate/internal/api"
)

// TestBrowserBreakGlass is break-glass end to end, in a real Chromium with
// DevTools virtual authenticators: a production IAM change that needs one
// approval is asked for with --break-glass; the on-call person alone
// satisfies it with their passkey (user verification); the waiting check
// gets its short grant and apply runs; the webhook fires at a local
// receiver (which lists no break-glass event: it is never filtered out);
// the review queue shows the use; the on-call person cannot review their
// own use; a second person acknowledges it with a note; the audit log
// verifies, the passkey assertion included, and exports the break-glass
// events.
func TestBrowserBreakGlass(t *testing.T) {
	top := t
	b := startBrowser(t)
	dir := t.TempDir()

	hooks := make(chan notifyEvent, 16)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var e notifyEvent
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("the webhook body is not JSON: %v\n%s", err, body)
		}
		select {
		case hooks <- e:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	cfg := filepath.Join(dir, "stepgate.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`server:
  break_glass:
    group: oncall
    grant_ttl: 3m
notifications:
  webhooks:
    - url: %s/hook
      events: [check.rejected]
`, receiver.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startWebServerOn(t, dir, "sqlite://"+filepath.Join(dir, "stepgate.db"), "127.0.0.1:0", "--config", cfg)
	admin := b.newPerson("admin", s)
	olivia := b.newPerson("olivia", s)

	prodIAM := repo(t, "examples/prod-iam.plan.json")
	tfplan := filepath.Join(dir, "tfplan")
	planfiletest.WriteFor(t, prodIAM, tfplan)
	const reason = "INC-1234: invoices fail to upload, the deployer role needs s3:PutObject"

	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		began := time.Now()
		ok := t.Run(name, f)
		t.Logf("%-28s %6.2f s", name, time.Since(began).Seconds())
		if !ok {
			t.FailNow()
		}
	}

	step("people_enroll", func(t *testing.T) {
		enrollPasskey(t, admin, s.enrollLink, "admin", "Admin laptop", "")
		r := run(t, dir, []string{"STEPGATE_PUBLIC_URL=" + s.url}, "users", "add", "olivia", "--group", "oncall", "--database", s.database)
		link := strings.TrimSpace(r.stdout)
		if r.code != 0 || !strings.HasPrefix(link, s.url+"/enroll/") {
			t.Fatalf("users add olivia: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
		}
		olivia.open(t, link, `button[data-passkey="register"]`)
		olivia.do(t, "registering a passkey", 10*time.Second,
			chromedp.SendKeys(chromedp.CSS(`input[data-passkey-name]`), "Olivia's key"),
			chromedp.Click(chromedp.CSS(`button[data-passkey="register"]`), chromedp.NodeVisible))
		olivia.at(t, "registering a passkey", "/account?done=enrolled")
	})

	var env []string
	var waiting *background
	var id string
	step("pipeline_asks_for_break_glass", func(t *testing.T) {
		env = pipelineEnv(s.server, s.token("billing-ci"))
		// Too short a reason: refused before anything is assessed.
		r := run(t, dir, env, "check", "--plan", prodIAM, "--workspace", "billing-prod", "--wait", "0s", "--break-glass", "--reason", "INC-1")
		if r.code == 0 || r.code == 3 || !strings.Contains(r.stderr+r.stdout, "at least 20 characters") {
			t.Fatalf("check --break-glass with a 5-character reason: exit %d; want a refusal saying the reason needs 20 characters\n%s%s", r.code, r.stdout, r.stderr)
		}
		waiting = startCheck(t, dir, env, "--plan", prodIAM, "--plan-file", tfplan, "--workspace", "billing-prod", "--wait", "90s",
			"--break-glass", "--reason", reason)
		top.Cleanup(waiting.stop)
		id = waiting.id(t)
	})

	step("oncall_breaks_the_glass_alone", func(t *testing.T) {
		olivia.open(t, s.url+"/checks/"+id, `button[data-passkey="breakglass"]`)
		v := readReview(t, olivia)
		if !strings.Contains(v.Needs, "1 from people other than the requester") || !strings.Contains(v.Needs, "0 of 1") {
			olivia.fail(t, "the decision box says %q; want one approval needed, none given", v.Needs)
		}
		if txt := olivia.text(t); !strings.Contains(txt, reason) {
			olivia.fail(t, "the review page does not show the pipeline's reason %q", reason)
		}
		clicked := time.Now()
		olivia.do(t, "clicking Break the glass", 10*time.Second, chromedp.Click(chromedp.CSS(`button[data-passkey="breakglass"]`), chromedp.NodeVisible))
		olivia.at(t, "breaking the glass", "/checks/"+id+"?done=breakglass")
		v = readReview(t, olivia)
		if v.State != "approved" || len(v.Answers) != 1 || !strings.Contains(v.Answers[0], "olivia") || !strings.Contains(v.Answers[0], "level 3") {
			olivia.fail(t, "after breaking the glass: state %q, answers %q; want approved by olivia alone at level 3", v.State, v.Answers)
		}
		if code := waiting.wait(t, 20*time.Second); code != 0 {
			t.Fatalf("the waiting check exited %d after the break-glass, want 0\n%s", code, waiting.output())
		}
		t.Logf("the waiting check exited 0 %.2f s after the click", time.Since(clicked).Seconds())
		r := run(t, dir, env, "apply", "--grant", "stepgate.grant", "--plan-file", tfplan, "--workspace", "billing-prod", "--", "sh", "-c", "echo ok > marker")
		if r.code != 0 {
			t.Fatalf("apply with the break-glass grant: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = run(t, dir, env, "check", "--plan", prodIAM, "--plan-file", tfplan, "--workspace", "billing-prod", "--wait", "0s", "-o", "json", "--grant-out", "again.grant")
		var c api.Check
		if json.Unmarshal([]byte(r.stdout), &c) == nil && c.ID == id {
			t.Errorf("asking again without --break-glass resumed the break-glass check %s", id)
		}
	})

	step("webhook_fires", func(t *testing.T) {
		select {
		case e := <-hooks:
			if e.Type != "break_glass.used" || e.Check == nil || e.Check.ID != id || e.Check.BreakGlass == nil ||
				e.Check.BreakGlass.UsedBy != "olivia" || e.Check.BreakGlass.Reason != reason || e.ReviewURL != s.url+"/reviews" {
				t.Fatalf("webhook event %+v; want break_glass.used of %s by olivia with the reason and the review queue's link", e, id)
			}
			if e.Check.Grant != "" {
				t.Fatal("the webhook event carries the grant")
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no webhook event within 20 s")
		}
	})

	step("review_queue", func(t *testing.T) {
		olivia.open(t, s.url+"/reviews", fmt.Sprintf(`li.review[data-check="%s"]`, id))
		if txt := olivia.text(t); !strings.Contains(txt, "glass broken by olivia") || !strings.Contains(txt, reason) || !strings.Contains(txt, "another person reviews it") {
			olivia.fail(t, "the review queue does not show olivia's use, its reason, and that another person reviews it")
		}
		if n := eval[int](t, olivia, "counting review forms", `document.querySelectorAll('form[action$="/acknowledge"]').length`); n != 0 {
			olivia.fail(t, "olivia is offered %d review forms of her own break-glass", n)
		}
		// Try anyway: the form as the page makes it for others.
		eval[bool](t, olivia, "adding a review form", fmt.Sprintf(`(() => {
			const f = document.createElement("form");
			f.method = "post"; f.action = "/reviews/%s/acknowledge"; f.id = "try-ack";
			f.innerHTML = '<textarea name="note">looks fine to me</textarea><button type="submit">go</button>';
			document.querySelector("main").append(f);
			return true;
		})()`, id))
		olivia.do(t, "acknowledging her own break-glass", 10*time.Second, chromedp.Click(chromedp.CSS("#try-ack button"), chromedp.NodeVisible))
		olivia.at(t, "being refused", "/reviews/"+id+"/acknowledge")
		if msg := eval[string](t, olivia, "reading the refusal", `(document.querySelector('main p.error[role="alert"]') || {}).textContent || ""`); !strings.Contains(msg, "another person reviews it") {
			olivia.fail(t, "her own review: the page says %q; want a refusal saying another person reviews it", msg)
		}

		admin.open(t, s.url+"/reviews", fmt.Sprintf(`li.review[data-check="%s"] textarea[name="note"]`, id))
		const note = "Called olivia: INC-1234 needed s3:PutObject; the policy change is reverted in PR 88."
		admin.do(t, "acknowledging with a note", 10*time.Second,
			chromedp.SendKeys(chromedp.CSS(`li.review textarea[name="note"]`), note),
			chromedp.Click(chromedp.CSS(`li.review button[type="submit"]`), chromedp.NodeVisible))
		admin.at(t, "acknowledging", "/reviews?done=acknowledged")
		if txt := admin.text(t); !strings.Contains(txt, "Reviewed by admin") || !strings.Contains(txt, note) {
			admin.fail(t, "after the review, the queue does not say reviewed by admin with the note")
		}
	})

	step("audit_verifies_and_exports", func(t *testing.T) {
		r := run(t, dir, []string{"STEPGATE_PUBLIC_URL=" + s.url}, "audit", "verify", "--database", s.database)
		if r.code != 0 || !strings.Contains(r.stdout, "audit log intact") || !strings.Contains(r.stdout, "passkey approvals verified: 1\n") {
			t.Fatalf("audit verify: exit %d; want the log intact and olivia's passkey assertion verified\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = run(t, dir, nil, "audit", "export", "--break-glass", "--database", s.database)
		if r.code != 0 {
			t.Fatalf("audit export --break-glass: exit %d\n%s", r.code, r.stderr)
		}
		var types []string
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var e struct{ Type, Actor, Subject string }
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("export line %q: %v", line, err)
			}
			types = append(types, e.Type+" "+e.Actor)
		}
		got := strings.Join(types, ", ")
		for _, want := range []string{"breakglass.refused billing-ci", "breakglass.requested billing-ci", "breakglass.used olivia", "grant.issued olivia", "breakglass.refused olivia", "breakglass.reviewed admin"} {
			if !strings.Contains(got, want) {
				t.Errorf("audit export --break-glass: %s; want %q among them", got, want)
			}
		}
		if strings.Contains(got, "check.created") || strings.Contains(got, "user.created") {
			t.Errorf("audit export --break-glass lists other events: %s", got)
		}
		resp, err := http.Get(s.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "\nstepgate_break_glass_reviews_overdue 0\n") {
			t.Errorf("/metrics has no stepgate_break_glass_reviews_overdue 0")
		}
	})
}

// notifyEvent is the JSON body of a webhook.
type notifyEvent struct {
	Type      string     `json:"type"`
	Check     *api.Check `json:"check"`
	ReviewURL string     `json:"review_url"`
}
