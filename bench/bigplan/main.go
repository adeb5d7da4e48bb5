// Command bigplan measures what a very large plan costs the real
// `stepgate serve` (issue 12, item 7): it writes a plan of CHANGES changes
// whose values are SIZE bytes each, starts the real binary on a fresh
// SQLite database, enrolls the first admin with TOTP over HTTP, submits the
// plan as a pipeline, opens its review page as the admin, and reports the
// time of each step and the server's peak RSS (VmHWM). It checks what it
// times: the check must be created (201) and pending, the page must answer
// 200 and show the check. With -strict it exits 1 when a goal is missed
// (review page under 1 s, peak RSS under 300 MiB).
//
//	go run ./bench/bigplan -bin ./stepgate -changes 1200 -size 102400
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp/totp"
)

func main() {
	bin := flag.String("bin", "", "the stepgate binary (default: build ./cmd/stepgate)")
	changes := flag.Int("changes", 1200, "resource changes in the plan")
	size := flag.Int("size", 100<<10, "bytes of values per change (half before, half after)")
	strict := flag.Bool("strict", false, "exit 1 when a goal is missed")
	flag.Parse()
	if err := run(*bin, *changes, *size, *strict); err != nil {
		fmt.Fprintln(os.Stderr, "bigplan:", err)
		os.Exit(1)
	}
}

func run(bin string, changes, size int, strict bool) error {
	dir, err := os.MkdirTemp("", "stepgate-bigplan-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		bin = filepath.Join(dir, "stepgate")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/stepgate").CombinedOutput(); err != nil {
			return fmt.Errorf("building stepgate: %v\n%s", err, out)
		}
	}
	planPath := filepath.Join(dir, "plan.json")
	planSize, err := writePlan(planPath, changes, size)
	if err != nil {
		return err
	}
	fmt.Printf("plan: %d changes, %.1f MB\n", changes, float64(planSize)/1e6)

	db := "sqlite://" + filepath.Join(dir, "stepgate.db")
	srv := exec.Command(bin, "serve", "--dev", "--database", db, "--listen", "127.0.0.1:0", "--log-format", "text")
	srv.Dir = dir
	stdout, err := srv.StdoutPipe()
	if err != nil {
		return err
	}
	srv.Stderr = io.Discard
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Signal(os.Interrupt); _ = srv.Wait() }()
	base, link, err := started(stdout)
	if err != nil {
		return err
	}
	tok, err := exec.Command(bin, "tokens", "create", "--name", "bench-ci", "--database", db).Output()
	if err != nil {
		return fmt.Errorf("tokens create: %w", err)
	}
	token := strings.TrimSpace(string(tok))

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 5 * time.Minute}
	if err := enroll(hc, base, link); err != nil {
		return err
	}

	// The pipeline submits the plan.
	f, err := os.Open(planPath)
	if err != nil {
		return err
	}
	req, _ := http.NewRequest("POST", base+"/v1/checks?workspace=billing-prod", f)
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	f.Close()
	if err != nil {
		return err
	}
	var c struct{ ID, State string }
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	create := time.Since(start)
	if res.StatusCode != http.StatusCreated || json.Unmarshal(body, &c) != nil || c.State != "pending" {
		return fmt.Errorf("creating the check: %d %.300s", res.StatusCode, body)
	}

	// The admin opens its review page.
	start = time.Now()
	page, err := hc.Get(base + "/checks/" + c.ID)
	if err != nil {
		return err
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	review := time.Since(start)
	if page.StatusCode != 200 || !bytes.Contains(html, []byte(c.ID)) {
		return fmt.Errorf("review page: %d (%d bytes)", page.StatusCode, len(html))
	}
	rss, err := peakRSS(srv.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("create check: %v\nreview page: %v (%d KB of HTML)\nserver peak RSS: %d MiB\n", create.Round(time.Millisecond), review.Round(time.Millisecond), len(html)>>10, rss>>20)
	ok := review < time.Second && rss < 300<<20
	fmt.Printf("goals (review page under 1 s, peak RSS under 300 MiB): %s\n", map[bool]string{true: "PASS", false: "FAIL"}[ok])
	if strict && !ok {
		os.Exit(1)
	}
	return nil
}

// writePlan writes a Terraform plan JSON of n updates whose before and
// after each hold a value of size/2 bytes.
func writePlan(path string, n, size int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprint(w, `{"format_version":"1.2","terraform_version":"1.9.5","resource_changes":[`)
	for i := range n {
		if i > 0 {
			w.WriteByte(',')
		}
		v := func(c byte) string { return strings.Repeat(string(c), size/2) }
		fmt.Fprintf(w, `{"address":"aws_instance.app[%d]","mode":"managed","type":"aws_instance","name":"app","index":%d,"provider_name":"registry.terraform.io/hashicorp/aws","change":{"actions":["update"],"before":{"user_data":%q,"instance_type":"t3.small"},"after":{"user_data":%q,"instance_type":"t3.small"},"after_unknown":{},"before_sensitive":{},"after_sensitive":{}}}`, i, i, v('a'), v('b'))
	}
	fmt.Fprint(w, `]}`)
	if err := w.Flush(); err != nil {
		return 0, err
	}
	st, err := f.Stat()
	f.Close()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

var (
	listening = regexp.MustCompile(`stepgate listening on \S+ \(public URL (\S+),`)
	enrollRE  = regexp.MustCompile(`https?://\S+/enroll/\S+`)
	secretRE  = regexp.MustCompile(`<code class="secret">([A-Z2-7 ]+)</code>`)
)

func started(r io.Reader) (base, link string, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if m := enrollRE.FindString(sc.Text()); m != "" {
			link = m
		}
		if m := listening.FindStringSubmatch(sc.Text()); m != nil {
			go func() { _, _ = io.Copy(io.Discard, r) }()
			return m[1], link, nil
		}
	}
	return "", "", fmt.Errorf("stepgate serve did not start")
}

// enroll sets up the first admin's TOTP factor through the enrollment
// link, which signs the admin in (the client keeps the session cookie).
func enroll(hc *http.Client, base, link string) error {
	res, err := hc.Get(link)
	if err != nil {
		return err
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := secretRE.FindSubmatch(page)
	if m == nil {
		return fmt.Errorf("enrollment page: no TOTP key (%d)", res.StatusCode)
	}
	secret := strings.ReplaceAll(string(m[1]), " ", "")
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		return err
	}
	u, _ := url.Parse(link)
	form := url.Values{"code": {code}, "name": {"bench"}}
	req, _ := http.NewRequest("POST", base+u.Path+"/totp", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	res, err = hc.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		return fmt.Errorf("enrolling with TOTP: %d", res.StatusCode)
	}
	return nil
}

// peakRSS reads a process's high-water mark of resident memory.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
