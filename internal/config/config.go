package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stepgate/stepgate/internal/loopback"
	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/plan/planfile"
	"github.com/stepgate/stepgate/internal/policy"
)

// EnvFile names the environment variable that points at stepgate.yaml when
// --config is not given.
const EnvFile = "STEPGATE_CONFIG"

// ErrInvalid says the configuration file is wrong; the message names what.
var ErrInvalid = errors.New("invalid configuration")

// Config is stepgate.yaml.
type Config struct {
	Server        Server           `yaml:"server"`
	Notifications Notifications    `yaml:"notifications"`
	Policy        policy.Overrides `yaml:"policy"`
	Plan          PlanSettings     `yaml:"plan"`
}

// Server is how `stepgate serve` and the admin commands run. Each field can
// also be set by an environment variable and a flag (flag > environment >
// file > default).
type Server struct {
	// Listen is the address to serve on (STEPGATE_LISTEN, --listen).
	Listen string `yaml:"listen"`
	// Database is sqlite://PATH or postgres://... (STEPGATE_DATABASE_URL,
	// --database).
	Database string `yaml:"database"`
	// PublicURL is the issuer of grants and the base of review links
	// (STEPGATE_PUBLIC_URL, --public-url).
	PublicURL string `yaml:"public_url"`
	// MasterKeyFile holds the key that encrypts secrets at rest
	// (STEPGATE_MASTER_KEY_FILE, --master-key-file).
	MasterKeyFile string `yaml:"master_key_file"`
	// PreviousMasterKeyFiles hold older master keys that still open what
	// they sealed, never seal: set during a master key rotation (stepgate
	// secrets rotate-master, docs/secrets.md).
	PreviousMasterKeyFiles []string `yaml:"previous_master_key_files"`
	// CheckTTL is how long a pending check waits for people.
	CheckTTL Duration `yaml:"check_ttl"`
	// GrantTTL is how long a grant is valid.
	GrantTTL Duration `yaml:"grant_ttl"`
	// Audience is the aud of grants.
	Audience string `yaml:"audience"`
	// GrantSubject is the sub of grants: "check" (the default, the check
	// id) or a template such as "workspace:{workspace}:aal:{aal}" for clouds
	// that match the subject exactly (docs/cloud-trust.md).
	GrantSubject string `yaml:"grant_subject"`
	// GrantAlgorithm is the algorithm of the grant-signing keys stepgate
	// creates: EdDSA (default) or RS256, which clouds' workload identity
	// federation requires (docs/cloud-trust.md). Changing it takes effect
	// at the next `stepgate keys rotate`.
	GrantAlgorithm string `yaml:"grant_algorithm"`
	// GrantAWSSessionTags adds the https://aws.amazon.com/tags claim to
	// grants (kind, workspace, environment, check, aal and secrets as AWS
	// session tags), so that an IAM role can trust only the grants for one
	// secret or workspace (docs/cloud-trust.md).
	GrantAWSSessionTags bool `yaml:"grant_aws_session_tags"`
	// PolicyDirs are directories of your own Rego modules.
	PolicyDirs []string `yaml:"policy_dirs"`
	// CIIssuers are the OIDC issuers of CI systems whose job tokens are
	// accepted in place of API tokens (see docs/ci.md).
	CIIssuers []CIIssuer `yaml:"ci_issuers"`
	// OIDC is the organisation's OpenID Connect provider for people
	// (sign-in and re-authentication to approve; see docs/people.md).
	OIDC *OIDC `yaml:"oidc"`
	// Audit tunes the audit log's signed checkpoints.
	Audit Audit `yaml:"audit"`
	// MetricsToken, when set, is the bearer token /metrics requires
	// (Authorization: Bearer TOKEN); MetricsTokenFile holds it instead
	// (the file wins). Unset: /metrics is open, as /healthz.
	MetricsToken     string `yaml:"metrics_token"`
	MetricsTokenFile string `yaml:"metrics_token_file"`
	// ShutdownGrace is how long serve waits on SIGTERM for requests in
	// flight and background work (default 25s; see docs/operations.md).
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// DatabaseTimeouts bound the waits on PostgreSQL.
	DatabaseTimeouts DatabaseTimeouts `yaml:"database_timeouts"`
	// Limits bound what one token may ask.
	Limits Limits `yaml:"limits"`
	// TrustedProxies are the addresses (CIDR or single IP) of the reverse
	// proxies in front of stepgate, whose X-Forwarded-For is believed for
	// the client address (which keys the TOTP back-off).
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Integrations are the systems that call stepgate from their side.
	Integrations Integrations `yaml:"integrations"`
	// BreakGlass is the emergency path (docs/people.md): off unless a
	// group is named.
	BreakGlass BreakGlass `yaml:"break_glass"`
}

// BreakGlass tunes break-glass: one person of Group satisfies a check
// alone with a fresh passkey, when its pipeline asked for it; another
// person reviews it afterwards. Unset durations take the defaults.
type BreakGlass struct {
	// Group is the group whose members may break the glass; empty: off.
	Group string `yaml:"group"`
	// GrantTTL is how long a break-glass grant is valid (default 5m, at
	// most server.grant_ttl).
	GrantTTL Duration `yaml:"grant_ttl"`
	// ReviewWithin is how long another person has to acknowledge a use
	// (default 24h).
	ReviewWithin Duration `yaml:"review_within"`
	// FreshPasskey is how old the passkey proof may be (default 5m).
	FreshPasskey Duration `yaml:"fresh_passkey"`
	// AllowDenyRules are the deny rules break-glass may override (default
	// none: a deny is final).
	AllowDenyRules []string `yaml:"allow_deny_rules"`
	// RemindEvery is how often an overdue review is announced again
	// (default 1h).
	RemindEvery Duration `yaml:"remind_every"`
}

// validate says what is wrong with the break-glass settings, each problem
// naming its key.
func (b *BreakGlass) validate(grantTTL Duration) []error {
	var errs []error
	set := b.GrantTTL != 0 || b.ReviewWithin != 0 || b.FreshPasskey != 0 || len(b.AllowDenyRules) > 0 || b.RemindEvery != 0
	if b.Group == "" {
		if set {
			errs = append(errs, errors.New("server.break_glass.group: required when any other server.break_glass key is set (the group whose members may break the glass)"))
		}
		return errs
	}
	if strings.TrimSpace(b.Group) != b.Group || strings.ContainsAny(b.Group, ",\n") {
		errs = append(errs, fmt.Errorf("server.break_glass.group: %q is not a group name", b.Group))
	}
	between := func(key string, d Duration, lo, hi time.Duration) {
		if d != 0 && (time.Duration(d) < lo || time.Duration(d) > hi) {
			errs = append(errs, fmt.Errorf("server.break_glass.%s: %v is not between %v and %v", key, time.Duration(d), lo, hi))
		}
	}
	between("grant_ttl", b.GrantTTL, 30*time.Second, time.Hour)
	if grantTTL > 0 && b.GrantTTL > grantTTL {
		errs = append(errs, fmt.Errorf("server.break_glass.grant_ttl: %v is longer than server.grant_ttl (%v): a break-glass grant is the shorter one", time.Duration(b.GrantTTL), time.Duration(grantTTL)))
	}
	between("review_within", b.ReviewWithin, 10*time.Minute, 30*24*time.Hour)
	between("fresh_passkey", b.FreshPasskey, 30*time.Second, 15*time.Minute)
	between("remind_every", b.RemindEvery, 5*time.Minute, 7*24*time.Hour)
	for i, r := range b.AllowDenyRules {
		if strings.TrimSpace(r) == "" || strings.TrimSpace(r) != r {
			errs = append(errs, fmt.Errorf("server.break_glass.allow_deny_rules[%d]: %q is not a rule id", i, r))
		}
	}
	return errs
}

// GitHubApp is the GitHub App stepgate runs as.
type GitHubApp struct {
	// AppID is the App's id (the iss of its JWTs).
	AppID int64 `yaml:"app_id"`
	// PrivateKeyFile holds the App's private key (PEM, RSA).
	PrivateKeyFile string `yaml:"private_key_file"`
	// WebhookSecretFile holds the secret GitHub signs deliveries with
	// (X-Hub-Signature-256).
	WebhookSecretFile string `yaml:"webhook_secret_file"`
	// APIURL is GitHub's REST API: https://api.github.com (the default),
	// or GitHub Enterprise Server's https://HOST/api/v3.
	APIURL string `yaml:"api_url"`
}

// DefaultGitHubAPIURL is GitHub.com's REST API.
const DefaultGitHubAPIURL = "https://api.github.com"

// API is the App's API URL, the default when unset, without a trailing
// slash.
func (g *GitHubApp) API() string {
	if g.APIURL == "" {
		return DefaultGitHubAPIURL
	}
	return strings.TrimRight(g.APIURL, "/")
}

// validate checks the App's settings: every problem, each naming its key.
func (g *GitHubApp) validate() []error {
	var errs []error
	const k = "server.integrations.github"
	if g.AppID <= 0 {
		errs = append(errs, errors.New(k+".app_id: required (the App's id, a positive number)"))
	}
	if g.PrivateKeyFile == "" {
		errs = append(errs, errors.New(k+".private_key_file: required (the App's private key, PEM)"))
	}
	if g.WebhookSecretFile == "" {
		errs = append(errs, errors.New(k+".webhook_secret_file: required (the App's webhook secret)"))
	}
	u, err := url.Parse(g.API())
	switch {
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf(k+".api_url: %q is not a URL such as https://api.github.com", g.APIURL))
	case u.Scheme == "https":
	case u.Scheme == "http" && u.Port() != "" && loopback.Host(u.Hostname()):
		// A test server on this machine.
	default:
		errs = append(errs, fmt.Errorf(k+".api_url: %q must be https (plain http only to a loopback host with a port, for tests)", g.APIURL))
	}
	return errs
}

// TrustedProxyPrefixes parses TrustedProxies.
func (s *Server) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range s.TrustedProxies {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("server.trusted_proxies: %q is neither a CIDR nor an IP address", v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Limits bound what one pipeline token may ask, per server process (see
// docs/operations.md). 0 or unset: the default; -1: unlimited.
type Limits struct {
	// ChecksPerMinute is the sustained rate of new checks per token
	// (default 120); ChecksBurst how many at once (default 30).
	ChecksPerMinute int `yaml:"checks_per_minute"`
	ChecksBurst     int `yaml:"checks_burst"`
	// MaxPendingPerToken caps the checks of one API token waiting for
	// people (default 20).
	MaxPendingPerToken int `yaml:"max_pending_per_token"`
}

// DatabaseTimeouts bound how long the server waits on PostgreSQL, so that
// a silent network partition fails requests closed (503) quickly. Unset
// values take the defaults (see docs/config.md).
type DatabaseTimeouts struct {
	// Connect bounds opening a connection (default 5s).
	Connect Duration `yaml:"connect"`
	// Statement bounds a statement or a transaction (default 5s).
	Statement Duration `yaml:"statement"`
	// Acquire bounds waiting for a free pooled connection (default 5s).
	Acquire Duration `yaml:"acquire"`
	// StartRetry is how long serve keeps retrying an unreachable database
	// at start, with backoff, before it gives up (default 2m).
	StartRetry Duration `yaml:"start_retry"`
}

// Audit tunes the signed checkpoints of the audit log.
type Audit struct {
	// CheckpointFile, when set, receives a copy of every signed checkpoint
	// as one JSON line (opened O_APPEND, mode 0600, fsynced after each
	// line), outside the database: `stepgate audit verify --checkpoints
	// FILE` compares the log against it (STEPGATE_AUDIT_CHECKPOINT_FILE).
	CheckpointFile string `yaml:"checkpoint_file"`
	// CheckpointInterval is how often the server checkpoints new events
	// (default and longest: 1m).
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
}

// MaxCheckpointInterval is the longest interval between checkpoints of
// new audit events.
const MaxCheckpointInterval = time.Minute

// OIDC configures sign-in and step-up through an OpenID Connect provider.
type OIDC struct {
	// Name is what the buttons say: "Sign in with <name>".
	Name   string `yaml:"name"`
	Issuer string `yaml:"issuer"`
	// ClientID and the file holding the client secret.
	ClientID         string `yaml:"client_id"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// CLIClientID is a public (native) client registered at the provider
	// with a loopback redirect (RFC 8252) for `stepgate login`; the people
	// API accepts ID tokens issued to it besides those of ClientID.
	CLIClientID string `yaml:"cli_client_id"`
	// RedirectPath is the callback path under the public URL (default
	// /oidc/callback).
	RedirectPath string `yaml:"redirect_path"`
	// Scopes besides openid (default: profile, email).
	Scopes []string `yaml:"scopes"`
	// GroupsClaim names the ID token claim with the person's groups; when
	// set, the mapped groups replace the account's groups at each sign-in.
	GroupsClaim string `yaml:"groups_claim"`
	// Groups maps a provider group to stepgate groups.
	Groups map[string][]string `yaml:"groups"`
	// ACR is the acr value asked for and accepted per level (2, 3).
	ACR map[int]string `yaml:"acr"`
	// AMR overrides the level of single amr values, e.g. {hwk: 3}.
	AMR map[string]int `yaml:"amr"`
}

// CIIssuer is one trusted issuer of CI tokens.
type CIIssuer struct {
	// URL is the issuer, exactly as the tokens' iss says it, e.g.
	// https://token.actions.githubusercontent.com.
	URL string `yaml:"url"`
	// Audience is the aud the tokens must carry.
	Audience string `yaml:"audience"`
	// System names the CI system in the pipeline identity (default:
	// github-actions for GitHub, gitlab-ci for gitlab hosts, else the
	// issuer's host).
	System string `yaml:"system"`
	// Rules map a token's claims to the workspaces it may ask for.
	Rules []CIRule `yaml:"rules"`
}

// CIRule grants workspaces to the tokens whose claims all match.
type CIRule struct {
	// Claims are glob patterns per claim (* matches any characters,
	// slashes included).
	Claims map[string]string `yaml:"claims"`
	// Workspaces are glob patterns of the workspaces granted.
	Workspaces []string `yaml:"workspaces"`
	// Name is the requester name, with {claim} placeholders, e.g.
	// "github:{actor}".
	Name string `yaml:"name"`
}

// Notifications are the webhooks told about checks.
type Notifications struct {
	Webhooks []Webhook `yaml:"webhooks"`
}

// Webhook is one receiver of events.
type Webhook struct {
	// URL receives a POST per event. Slack-style URLs hold a secret: keep
	// the file private.
	URL string `yaml:"url"`
	// Format is json (default), slack or teams.
	Format string `yaml:"format"`
	// Events: check.pending, check.approved, check.rejected, check.expired,
	// factor.added, factor.removed (default: all).
	Events []string `yaml:"events"`
	// SecretFile holds a key that signs each body (header
	// Stepgate-Signature: sha256=HMAC).
	SecretFile string `yaml:"secret_file"`
}

// Environment variables of the server settings.
const (
	EnvListen         = "STEPGATE_LISTEN"
	EnvDatabase       = "STEPGATE_DATABASE_URL"
	EnvPublicURL      = "STEPGATE_PUBLIC_URL"
	EnvMasterKeyFile  = "STEPGATE_MASTER_KEY_FILE"
	EnvCheckpointFile = "STEPGATE_AUDIT_CHECKPOINT_FILE"
)

// Duration is a time.Duration written as "15m" or "1h".
type Duration time.Duration

// UnmarshalYAML reads a duration such as "90s", "15m" or "1h".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v <= 0 {
		return fmt.Errorf("line %d: %q is not a positive duration such as 15m or 1h", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// ApplyEnv sets the server settings given in the environment.
func (c *Config) ApplyEnv(getenv func(string) string) {
	for _, f := range []struct {
		env string
		dst *string
	}{{EnvListen, &c.Server.Listen}, {EnvDatabase, &c.Server.Database}, {EnvPublicURL, &c.Server.PublicURL}, {EnvMasterKeyFile, &c.Server.MasterKeyFile}, {EnvCheckpointFile, &c.Server.Audit.CheckpointFile}} {
		if v := getenv(f.env); v != "" {
			*f.dst = v
		}
	}
}

// Validate checks the server settings.
func (s *Server) Validate() error {
	var errs []error
	if s.Database == "" {
		errs = append(errs, errors.New("server.database: required (sqlite://PATH or postgres://...)"))
	} else if !strings.HasPrefix(s.Database, "sqlite://") && !strings.HasPrefix(s.Database, "postgres://") && !strings.HasPrefix(s.Database, "postgresql://") {
		errs = append(errs, fmt.Errorf("server.database: %q is neither sqlite://PATH nor postgres://...", Redacted(s.Database)))
	}
	if _, err := s.TrustedProxyPrefixes(); err != nil {
		errs = append(errs, err)
	}
	if s.PublicURL != "" {
		u, err := url.Parse(s.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("server.public_url: %q is not an http(s) URL", s.PublicURL))
		}
	}
	if o := s.OIDC; o != nil {
		if o.Issuer == "" || o.ClientID == "" {
			errs = append(errs, errors.New("server.oidc: issuer and client_id are required"))
		}
		if o.CLIClientID != "" && o.CLIClientID == o.ClientID {
			errs = append(errs, errors.New("server.oidc.cli_client_id: must be another client than client_id: a public client with a loopback redirect, without a secret"))
		}
		if o.RedirectPath != "" && !strings.HasPrefix(o.RedirectPath, "/") {
			errs = append(errs, fmt.Errorf("server.oidc.redirect_path: %q is not a path", o.RedirectPath))
		}
		for l := range o.ACR {
			if l < 1 || l > 3 {
				errs = append(errs, fmt.Errorf("server.oidc.acr: level %d is not 1, 2 or 3", l))
			}
		}
	}
	if s.Audit.CheckpointInterval > Duration(MaxCheckpointInterval) {
		errs = append(errs, fmt.Errorf("server.audit.checkpoint_interval: %v is longer than %v (unsealed events are what a database attacker can remove undetected)", time.Duration(s.Audit.CheckpointInterval), MaxCheckpointInterval))
	}
	errs = append(errs, s.BreakGlass.validate(s.GrantTTL)...)
	if err := s.Integrations.HCPTerraform.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch s.GrantAlgorithm {
	case "", "EdDSA", "RS256":
	default:
		errs = append(errs, fmt.Errorf("server.grant_algorithm: %q is neither EdDSA nor RS256", s.GrantAlgorithm))
	}
	if g := s.Integrations.GitHub; g != nil {
		errs = append(errs, g.validate()...)
	}
	return errors.Join(errs...)
}

// Redacted is a database URL fit for logs and messages: its password, if
// any, is hidden, whether it is in the user information
// (postgres://u:PASSWORD@host), a query parameter (?password=PASSWORD) or a
// key=value string (password=PASSWORD).
func Redacted(dsn string) string { return RedactSecrets(dsn) }

var (
	// scheme://user:PASSWORD@ (the password runs to the last @ before the
	// host: passwords may hold '@' only percent-encoded, but be generous).
	userinfoPassword = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*:)[^\s@/]*@`)
	// password=... in a query string or a key=value DSN, quoted or not.
	keyPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&'"]+)`)
)

// RedactSecrets hides the passwords of every database URL or key=value
// DSN in s (log lines, error messages).
func RedactSecrets(s string) string {
	if !strings.Contains(s, "@") && !strings.Contains(strings.ToLower(s), "password") {
		return s
	}
	s = userinfoPassword.ReplaceAllString(s, "${1}xxxxx@")
	return keyPassword.ReplaceAllString(s, "${1}xxxxx")
}

// PlanSettings tune plan reading.
type PlanSettings struct {
	// MaxSize caps the size of a plan document ("512MiB", "2GB", or bytes).
	MaxSize ByteSize `yaml:"max_size"`
	// SavedPlanBinding is how a check's saved plan is bound to its plan
	// JSON: "verify" (the default: the saved plan is sent and compared) or
	// "json-only" (what cannot be verified is accepted with the finding
	// plan.unverified). See planfile.Bindings.
	SavedPlanBinding string `yaml:"saved_plan_binding"`
}

// ByteSize is a size written with units, as "512MiB".
type ByteSize int64

// UnmarshalYAML reads "512MiB", "1.5 GB" or a plain number of bytes.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

// sizeUnits are the units ParseSize knows, in lower case: SI (powers of
// 1000) and IEC (powers of 1024), as humanize and Kubernetes write them.
var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20, "gi": 1 << 30, "gib": 1 << 30, "ti": 1 << 40, "tib": 1 << 40,
}

// ParseSize reads a size such as "512MiB", "1.5 GB" or "100000000".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	mult, known := sizeUnits[unit]
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || !known || num == "" || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("size %q: want a number of bytes or a size such as 512MiB", s)
	}
	v := f * mult
	if v < 1 || v > 1<<40 {
		return 0, fmt.Errorf("size %q: must be between 1 byte and 1 TiB", s)
	}
	return int64(v), nil
}

// Default returns the configuration used when there is no file.
func Default() *Config {
	return &Config{
		Server: Server{
			Listen:   "127.0.0.1:8080",
			Database: "sqlite://./stepgate.db",
			CheckTTL: Duration(time.Hour),
			GrantTTL: Duration(15 * time.Minute),
			Audience: "stepgate",

			GrantAlgorithm: "EdDSA",
			Audit:          Audit{CheckpointInterval: Duration(MaxCheckpointInterval)},
		},
		Plan: PlanSettings{MaxSize: plan.DefaultMaxBytes, SavedPlanBinding: planfile.BindingVerify},
	}
}

// Load reads a configuration file. An empty path returns the defaults.
func Load(path string) (*Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	if err := c.decode(b); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, path, err)
	}
	return c, nil
}

func (c *Config) decode(b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return explain(b, reflect.TypeOf(c), err)
	}
	if _, err := c.PolicyConfig(); err != nil {
		return err
	}
	if !slices.Contains(planfile.Bindings, c.Plan.SavedPlanBinding) {
		return fmt.Errorf("plan.saved_plan_binding %q: want one of %s", c.Plan.SavedPlanBinding, strings.Join(planfile.Bindings, ", "))
	}
	return nil
}

// PolicyConfig returns the policy tuning: the defaults with this file's
// policy section applied, validated.
func (c *Config) PolicyConfig() (policy.Config, error) {
	pc := c.Policy.Apply(policy.DefaultConfig())
	if err := pc.Validate(); err != nil {
		return policy.Config{}, err
	}
	return pc, nil
}

// Integrations are the systems that call stepgate from their side.
type Integrations struct {
	// HCPTerraform makes stepgate a run task of HCP Terraform or Terraform
	// Enterprise (docs/integrations/hcp-terraform.md).
	HCPTerraform *HCPTerraform `yaml:"hcp_terraform"`
	// GitHub makes stepgate a GitHub App answering custom deployment
	// protection rules (docs/integrations/github.md); nil: off.
	GitHub *GitHubApp `yaml:"github"`
}

// HCPTerraform is server.integrations.hcp_terraform.
type HCPTerraform struct {
	// HMACKeyFile holds the run task's HMAC key (required).
	HMACKeyFile string `yaml:"hmac_key_file"`
	// APIHosts are the hosts plan JSON is fetched from, redirects followed
	// to and callbacks sent to (default app.terraform.io and
	// archivist.terraform.io); https only, but for loopback hosts given
	// with a port (tests).
	APIHosts []string `yaml:"api_hosts"`
	// Workspace is the stepgate workspace of a run (default
	// "{organization}/{workspace}"; also {workspace_id}).
	Workspace string `yaml:"workspace"`
	// Heartbeat is how often a waiting run task tells HCP Terraform it is
	// running (default 5m; HCP Terraform fails a task silent for 10m).
	Heartbeat Duration `yaml:"heartbeat"`
}

// MaxHCPHeartbeat keeps heartbeats well within HCP Terraform's 10 minutes.
const MaxHCPHeartbeat = 8 * time.Minute

var workspacePlaceholder = regexp.MustCompile(`\{[^}]*\}`)

// Validate checks server.integrations.hcp_terraform.
func (h *HCPTerraform) Validate() error {
	if h == nil {
		return nil
	}
	var errs []error
	if strings.TrimSpace(h.HMACKeyFile) == "" {
		errs = append(errs, errors.New("server.integrations.hcp_terraform.hmac_key_file: required (the run task's HMAC key)"))
	}
	for _, p := range workspacePlaceholder.FindAllString(h.Workspace, -1) {
		if p != "{organization}" && p != "{workspace}" && p != "{workspace_id}" {
			errs = append(errs, fmt.Errorf("server.integrations.hcp_terraform.workspace: unknown placeholder %s (use {organization}, {workspace}, {workspace_id})", p))
		}
	}
	if time.Duration(h.Heartbeat) > MaxHCPHeartbeat {
		errs = append(errs, fmt.Errorf("server.integrations.hcp_terraform.heartbeat: %v is longer than %v (HCP Terraform fails a task silent for 10 minutes)", time.Duration(h.Heartbeat), MaxHCPHeartbeat))
	}
	for _, e := range h.APIHosts {
		e = strings.TrimSpace(e)
		if e == "" || strings.Contains(e, "://") || strings.ContainsAny(e, "/?#@ ") {
			errs = append(errs, fmt.Errorf("server.integrations.hcp_terraform.api_hosts: %q is not a host name (give app.terraform.io, or 127.0.0.1:8080 for tests)", e))
		}
	}
	return errors.Join(errs...)
}
