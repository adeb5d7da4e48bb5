package github

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/stepgate/stepgate/internal/store"
)

// Path is where GitHub delivers the App's webhooks.
const Path = "/v1/integrations/github/webhook"

// maxBody caps a delivery (GitHub caps payloads at 25 MB; a
// deployment_protection_rule event is a few kilobytes).
const maxBody = 1 << 20

// ValidSignature reports whether sig, an X-Hub-Signature-256 header
// ("sha256=" and the hex HMAC-SHA256 of the body under the secret), signs
// body. The comparison takes constant time.
func ValidSignature(secret, body []byte, sig string) bool {
	hexSum, ok := strings.CutPrefix(sig, "sha256=")
	if !ok || len(secret) == 0 {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// protectionRuleEvent is the part of a deployment_protection_rule delivery
// stepgate reads.
type protectionRuleEvent struct {
	Action                string `json:"action"`
	Environment           string `json:"environment"`
	Event                 string `json:"event"`
	DeploymentCallbackURL string `json:"deployment_callback_url"`
	SHA                   string `json:"sha"`
	Deployment            *struct {
		SHA string `json:"sha"`
	} `json:"deployment"`
	Repository *struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	Installation *struct {
		ID int64 `json:"id"`
	} `json:"installation"`
}

// callbackPath is the path of a run's callback under the API's base path.
var callbackPath = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)/actions/runs/([0-9]{1,20})/deployment_protection_rule$`)

// ServeHTTP receives a delivery: the signature first, then the event.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	delivery := r.Header.Get("X-GitHub-Delivery")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		reply(w, http.StatusBadRequest, "unreadable body")
		return
	}
	if len(body) > maxBody {
		a.refuse(ctx, delivery, "body too large", http.StatusRequestEntityTooLarge)
		reply(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	if !ValidSignature(a.cfg.Secret, body, r.Header.Get("X-Hub-Signature-256")) {
		a.refuse(ctx, delivery, "no or a wrong X-Hub-Signature-256", http.StatusUnauthorized)
		reply(w, http.StatusUnauthorized, "bad signature")
		return
	}
	switch r.Header.Get("X-GitHub-Event") {
	case "ping":
		reply(w, http.StatusOK, "pong")
		return
	case "deployment_protection_rule":
	default:
		reply(w, http.StatusOK, "ignored")
		return
	}
	var ev protectionRuleEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		a.refuse(ctx, delivery, "the payload is not JSON", http.StatusBadRequest)
		reply(w, http.StatusBadRequest, "not JSON")
		return
	}
	if ev.Action != "requested" {
		reply(w, http.StatusOK, "ignored")
		return
	}
	d, err := a.delivery(delivery, &ev)
	if err != nil {
		a.refuse(ctx, delivery, err.Error(), http.StatusBadRequest)
		reply(w, http.StatusBadRequest, err.Error())
		return
	}
	d.CreatedAt, d.UpdatedAt = a.now(), a.now()
	switch err := a.st.AddGitHubDelivery(ctx, d); {
	case errors.Is(err, store.ErrConflict):
		reply(w, http.StatusOK, "already received")
		return
	case err != nil:
		// Not recorded: GitHub shows the failure and can redeliver.
		a.log.ErrorContext(ctx, "recording a GitHub delivery failed", "delivery", d.ID, "err", err)
		reply(w, http.StatusServiceUnavailable, "not recorded; redeliver later")
		return
	}
	select {
	case a.kick <- d.ID:
	default: // the loop is busy: the delivery is resumed at the next start
		a.log.WarnContext(ctx, "GitHub delivery queued for the next start", "delivery", d.ID)
	}
	reply(w, http.StatusAccepted, "accepted")
}

// delivery checks an event and makes it a delivery to answer. The
// callback must be a run's callback on the configured API's host and base
// path, for the event's own repository.
func (a *App) delivery(id string, ev *protectionRuleEvent) (*store.GitHubDelivery, error) {
	if id == "" || len(id) > 100 {
		return nil, errors.New("no X-GitHub-Delivery")
	}
	if ev.Installation == nil || ev.Installation.ID <= 0 {
		return nil, errors.New("no installation")
	}
	if ev.Repository == nil || ev.Repository.FullName == "" {
		return nil, errors.New("no repository")
	}
	if ev.Environment == "" || len(ev.Environment) > 255 {
		return nil, errors.New("no environment")
	}
	sha := ev.SHA
	if ev.Deployment != nil && ev.Deployment.SHA != "" {
		sha = ev.Deployment.SHA
	}
	cb, err := url.Parse(ev.DeploymentCallbackURL)
	if err != nil || cb.RawQuery != "" || cb.Fragment != "" || cb.User != nil {
		return nil, errors.New("deployment_callback_url is not a URL")
	}
	api, err := url.Parse(a.cfg.APIURL)
	if err != nil {
		return nil, errors.New("no API URL")
	}
	if cb.Scheme != api.Scheme || !strings.EqualFold(cb.Host, api.Host) {
		return nil, errors.New("deployment_callback_url is not on the GitHub API's host")
	}
	rest, ok := strings.CutPrefix(cb.EscapedPath(), strings.TrimRight(api.EscapedPath(), "/"))
	m := callbackPath.FindStringSubmatch(rest)
	if !ok || m == nil {
		return nil, errors.New("deployment_callback_url is not a workflow run's deployment_protection_rule")
	}
	if !strings.EqualFold(m[1]+"/"+m[2], ev.Repository.FullName) {
		return nil, errors.New("deployment_callback_url names another repository")
	}
	if _, err := strconv.ParseUint(m[3], 10, 64); err != nil {
		return nil, errors.New("deployment_callback_url has no run id")
	}
	return &store.GitHubDelivery{
		ID: id, InstallationID: ev.Installation.ID, Repository: ev.Repository.FullName, RunID: m[3],
		SHA: sha, Environment: ev.Environment, CallbackURL: cb.String(), State: store.DeliveryReceived,
	}, nil
}

func reply(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
