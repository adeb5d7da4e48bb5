package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/stepgate/stepgate/internal/logtest"
	"github.com/stepgate/stepgate/internal/testenv"
)

// The browser tests drive a real headless Chromium with chromedp. Each
// person has a browser context of their own (their own cookies) and a
// DevTools virtual authenticator in their tab (their own passkeys).

// tail is the end of s, at most n lines.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("(%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// webServer is a running `stepgate serve --dev` with what it printed for
// people: the first admin's enrollment link.
type webServer struct {
	*server
	enrollLink string
	log        *logtest.Buffer
}

var enrollLine = regexp.MustCompile(`https?://\S+/enroll/\S+`)

// startWebServer runs `stepgate serve --dev` on a free port, as startServer
// does, and keeps the first admin's enrollment link that it prints.
func startWebServer(t *testing.T, dir, database string) *webServer {
	t.Helper()
	return startWebServerOn(t, dir, database, "127.0.0.1:0")
}

// startWebServerOn is startWebServer listening on listen, with extra
// arguments for serve (such as --config).
func startWebServerOn(t *testing.T, dir, database, listen string, extra ...string) *webServer {
	t.Helper()
	args := append([]string{"serve", "--dev", "--database", database, "--listen", listen, "--log-format", "text"}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	log := &logtest.Buffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, dir: dir, database: database, cmd: cmd, exited: make(chan error, 1)}
	ws := &webServer{server: s, log: log}
	type started struct{ url, link string }
	ready := make(chan started, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		link := ""
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, "stdout: "+line)
			if m := enrollLine.FindString(line); m != "" {
				link = m
			}
			if m := listening.FindStringSubmatch(line); m != nil {
				ready <- started{m[2], link}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { s.exited <- cmd.Wait() }()
	select {
	case st := <-ready:
		s.url, s.public, ws.enrollLink = st.url, st.url, st.link
	case err := <-s.exited:
		t.Fatalf("stepgate serve exited: %v\n%s", err, log)
	case <-time.After(30 * time.Second):
		t.Fatalf("stepgate serve did not start\n%s", log)
	}
	t.Cleanup(s.stop)
	return ws
}

// background is a `stepgate check` waiting in the background.
type background struct {
	cmd         *exec.Cmd
	out, errOut *watchWriter
	found       chan string
	done        chan struct{}
	err         error
	started     time.Time
	cancel      context.CancelFunc
}

// startCheck runs `stepgate check` in the background in dir. The caller
// stops it (stop) when the test that owns it ends.
func startCheck(t *testing.T, dir string, env []string, args ...string) *background {
	t.Helper()
	return startStepgate(t, dir, env, append([]string{"check"}, args...)...)
}

// startStepgate runs stepgate with args in the background in dir, as
// startCheck runs check.
func startStepgate(t *testing.T, dir string, env []string, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	b := &background{cmd: cmd, found: make(chan string, 1), done: make(chan struct{}), started: time.Now()}
	b.out = &watchWriter{re: checkID, found: b.found}
	b.errOut = &watchWriter{re: checkID, found: b.found}
	cmd.Stdout, cmd.Stderr = b.out, b.errOut
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	b.cancel = cancel
	go func() {
		b.err = cmd.Wait()
		cancel()
		close(b.done)
	}()
	return b
}

// stop ends the command if it still runs, and waits for it.
func (b *background) stop() {
	b.cancel()
	<-b.done
}

// id waits for the check id that the command prints.
func (b *background) id(t *testing.T) string {
	t.Helper()
	select {
	case id := <-b.found:
		return id
	case <-b.done:
		t.Fatalf("stepgate check ended before printing a check id: %v\n%s", b.err, b.output())
	case <-time.After(30 * time.Second):
		t.Fatalf("stepgate check printed no check id within 30 s:\n%s", b.output())
	}
	return ""
}

func (b *background) output() string { return b.out.String() + b.errOut.String() }

// wait waits for the command to end and returns its exit code.
func (b *background) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(timeout):
		t.Fatalf("stepgate check still waiting after %v:\n%s", timeout, b.output())
	}
	var ee *exec.ExitError
	switch {
	case b.err == nil:
		return 0
	case errors.As(b.err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode()
	}
	t.Fatalf("stepgate check: %v\n%s", b.err, b.output())
	return -1
}

// findChromium returns the browser to drive: $STEPGATE_TEST_CHROMIUM, or
// Chromium or Chrome on PATH. Without one the test skips, except in CI
// (the environment variable CI is set), where it fails: CI installs it.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("STEPGATE_TEST_CHROMIUM"); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("STEPGATE_TEST_CHROMIUM=%s: %v", p, err)
		}
		return path
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome", "/usr/bin/chromium"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	testenv.Missing(t, "no Chromium found (looked for $STEPGATE_TEST_CHROMIUM, chromium, chromium-browser, google-chrome): "+
		"install Chromium (Debian: apt-get install chromium) or set STEPGATE_TEST_CHROMIUM to run the browser tests")
	return ""
}

// browser is one headless Chromium.
type browser struct {
	t         *testing.T // the top-level test, which owns the browser and its people
	ctx       context.Context
	output    *logtest.Buffer // what the browser process printed
	artifacts string          // screenshots and page dumps
	started   time.Time
}

// Screen size of every page and screenshot.
const screenW, screenH = 1280, 900

func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := findChromium(t)
	profile := t.TempDir() // registered first: removed after the browser is gone
	out := &logtest.Buffer{}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(screenW, screenH),
		chromedp.CombinedOutput(out),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		defer ccancel()
		_ = chromedp.Cancel(cctx)
		cancel()
	})
	b := &browser{t: t, ctx: ctx, output: out, artifacts: t.ArtifactDir(), started: time.Now()}
	// The first Run starts the browser; it lives as long as ctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v\n%s", path, err, tail(out.String(), 40))
	}
	t.Logf("browser %s started in %v; screenshots and page dumps go to %s", path, time.Since(b.started).Round(time.Millisecond), b.artifacts)
	return b
}

// person is someone at their own browser: a browser context (cookies) and
// a tab with a virtual authenticator.
type person struct {
	name    string
	b       *browser
	ctx     context.Context
	auth    webauthn.AuthenticatorID
	console *logtest.Buffer
	server  *webServer // for its log on failure
	shots   int
}

// newPerson opens a new browser context with a tab that has a virtual
// passkey authenticator: CTAP2, internal (platform), resident keys, user
// verification that succeeds, presence simulated.
func (b *browser) newPerson(name string, s *webServer) *person {
	t := b.t
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	p := &person{name: name, b: b, ctx: ctx, console: &logtest.Buffer{}, server: s}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(screenW, screenH)); err != nil {
		t.Fatalf("%s: opening a tab: %v\n%s", name, err, tail(b.output.String(), 40))
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			where := ""
			if m.URL != "" {
				where = fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
			}
			fmt.Fprintf(p.console, "%s %s%s\n", m.Time.Format("15:04:05.000"), m.String(), where)
		}
	}()
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return fmt.Errorf("WebAuthn.enable: %w", err)
		}
		res, err := cdp.Call(ctx, tg, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol:                    webauthn.AuthenticatorProtocolCtap2,
				Transport:                   webauthn.AuthenticatorTransportInternal,
				HasResidentKey:              true,
				HasUserVerification:         true,
				IsUserVerified:              true,
				AutomaticPresenceSimulation: true,
			},
		})
		if err != nil {
			return fmt.Errorf("WebAuthn.addVirtualAuthenticator: %w", err)
		}
		p.auth = res.AuthenticatorID
		return nil
	}))
	if err != nil {
		t.Fatalf("%s: setting up the virtual authenticator: %v", name, err)
	}
	return p
}

// credentials lists the passkeys in the person's authenticator.
func (p *person) credentials(t *testing.T) []*webauthn.Credential {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: p.auth})
	if err != nil {
		p.fail(t, "reading the virtual authenticator's credentials: %v", err)
	}
	return res.Credentials
}

// do runs actions in the person's tab within timeout, and fails the test
// with the page, a screenshot and the console when they fail.
func (p *person) do(t *testing.T, what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fail(t, "%s: %v", what, err)
	}
}

// open navigates to path (on the server) and waits for sel to be visible.
func (p *person) open(t *testing.T, url, sel string) {
	t.Helper()
	p.do(t, "opening "+url, 20*time.Second, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// eval evaluates a JavaScript expression in the page and decodes its
// value into T.
func eval[T any](t *testing.T, p *person, what, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.fail(t, "%s: %v", what, err)
	}
	return v
}

// text is what the page shows, as a person reads it.
func (p *person) text(t *testing.T) string {
	t.Helper()
	return eval[string](t, p, "reading the page", `document.body ? document.body.innerText : ""`)
}

// until polls the page (across navigations) until the expression gives
// "ok", and fails at once when it gives a text starting with "error:"
// (for example the status line of a passkey ceremony that failed).
func (p *person) until(t *testing.T, what, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		cancel()
		switch {
		case err != nil:
			last = err.Error() // a navigation in progress, most likely
		case v == "ok":
			return
		case strings.HasPrefix(v, "error:"):
			p.fail(t, "%s: the page says %q", what, strings.TrimSpace(strings.TrimPrefix(v, "error:")))
		default:
			last = v
		}
		if time.Now().After(deadline) {
			p.fail(t, "%s: not done after %v (last: %q)", what, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// at waits until the page is loaded at path (with its query), and fails
// at once when a passkey ceremony on the page reports an error.
func (p *person) at(t *testing.T, what, path string) {
	t.Helper()
	p.until(t, what, fmt.Sprintf(`(() => {
		if (location.pathname + location.search === %q && document.readyState === "complete") return "ok";
		const s = document.querySelector("[data-passkey-status].error");
		if (s && s.textContent) return "error:" + s.textContent;
		return location.pathname + location.search + " (" + document.readyState + ")";
	})()`, path), 20*time.Second)
}

// screenshot captures the viewport as a PNG.
func (p *person) screenshot(t *testing.T) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.fail(t, "taking a screenshot: %v", err)
	}
	return png
}

// screenshotThrough captures the page, screenW wide, from its top down to
// the bottom of the element sel (at most 2400 pixels): a page longer than
// the screen in one image.
func (p *person) screenshotThrough(t *testing.T, sel string) []byte {
	t.Helper()
	bottom := eval[float64](t, p, "measuring the page for a screenshot", fmt.Sprintf(`(() => {
		const e = document.querySelector(%q);
		return e ? e.getBoundingClientRect().bottom + window.scrollY : document.documentElement.scrollHeight;
	})()`, sel))
	height := min(math.Ceil(bottom)+24, 2400)
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, page.CaptureScreenshot, page.CaptureScreenshotParams{
		Format:                page.CaptureScreenshotFormatPng,
		Clip:                  &page.Viewport{Width: screenW, Height: height, Scale: 1},
		CaptureBeyondViewport: new(true),
		FromSurface:           new(true),
	})
	if err != nil {
		p.fail(t, "taking a screenshot: %v", err)
	}
	return res.Data
}

// keepScreenshot saves a page's screenshot in the artifacts directory, and
// in docs/images/ when STEPGATE_UPDATE_SCREENSHOTS=1 (to refresh the
// committed images).
func (p *person) keepScreenshot(t *testing.T, name string, png []byte) {
	t.Helper()
	path := filepath.Join(p.b.artifacts, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", path, len(png))
	if os.Getenv("STEPGATE_UPDATE_SCREENSHOTS") == "1" {
		doc := repo(t, filepath.Join("docs", "images", name))
		if err := os.MkdirAll(filepath.Dir(doc), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(doc, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s", doc)
	}
}

// fail ends the (sub)test with what the person's browser shows: the
// address, the page's text, a screenshot, the console, and the end of
// the server's log.
func (p *person) fail(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Fatalf("%s: %s\n%s", p.name, fmt.Sprintf(format, args...), p.dump(t.Name()))
}

func (p *person) dump(label string) string {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	var b strings.Builder
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		loc = "(" + err.Error() + ")"
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : "(no body)"`))
	if err != nil {
		text = "(" + err.Error() + ")"
	}
	fmt.Fprintf(&b, "--- %s's browser at %s shows:\n%s\n", p.name, loc, tail(text, 80))
	if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
		p.shots++
		name := strings.NewReplacer("/", "_", " ", "_").Replace(fmt.Sprintf("failure-%s-%s-%d.png", p.name, label, p.shots))
		path := filepath.Join(p.b.artifacts, name)
		if err := os.WriteFile(path, png, 0o644); err == nil {
			fmt.Fprintf(&b, "--- screenshot: %s (kept with go test -artifacts)\n", path)
		}
	} else {
		fmt.Fprintf(&b, "--- no screenshot: %v\n", err)
	}
	fmt.Fprintf(&b, "--- %s's browser console:\n%s\n", p.name, tail(p.console.String(), 40))
	if p.server != nil {
		fmt.Fprintf(&b, "--- server log:\n%s\n", tail(p.server.log.String(), 30))
	}
	return b.String()
}
