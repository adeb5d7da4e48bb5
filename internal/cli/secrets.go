package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/client"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/grant"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/secret"
	"github.com/stepgate/stepgate/internal/store"
)

func newSecretsCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Keep secrets sealed in stepgate, released once to a process after approval",
		Long: `Secrets kept in stepgate's database, sealed: each version under a fresh
AES-256-GCM data key, the data key under the master key, with the name,
version and workspace authenticated so a sealed value cannot be moved.

Admins write them with put, list, rm and rotate-master, acting on the
database directly like the other admin commands. Pipelines read them with
get or stepgate exec, which create a secret.read check: the policy decides
what it needs (by default a passkey, aal 3; in production also another
person's approval), and once allowed or approved its grant is exchanged,
once, for the values. See docs/secrets.md.`,
	}
	cmd.AddCommand(newSecretsPutCmd(env), newSecretsListCmd(env), newSecretsRmCmd(env), newSecretsRotateCmd(env), newSecretsGetCmd(env))
	return cmd
}

// secretService opens the secret service over st with the configured
// master key and its previous keys.
func secretService(cfg *config.Config, st store.Store) (*secret.Service, error) {
	master, _, err := app.LoadKeyring(cfg.Server, false)
	if err != nil {
		return nil, exit(ExitUsage, err)
	}
	return secret.New(st, master, time.Now), nil
}

func secretExit(err error) error {
	switch {
	case errors.Is(err, secret.ErrInvalid), errors.Is(err, secret.ErrNotFound):
		return exit(ExitUsage, err)
	case errors.Is(err, secret.ErrSealed):
		return exit(ExitInternal, fmt.Errorf("%w (is the master key that sealed it loaded? server.previous_master_key_files)", err))
	}
	return exit(ExitInternal, err)
}

func newSecretsPutCmd(env Env) *cobra.Command {
	var (
		f           dbFlags
		workspace   string
		description string
		fromFile    string
	)
	cmd := &cobra.Command{
		Use:   "put NAME --workspace GLOB [--description TEXT] [--from-file FILE] < value",
		Short: "Write a new version of a secret, read from standard input or a file",
		Long: `Write a new version of secret NAME, readable by checks of the workspaces the
--workspace glob matches. The value is read from standard input (one
trailing newline is removed, so that 'echo' and here-strings work) or from
--from-file byte for byte; never from a flag, which would show in process
listings and shell history. It is sealed before it reaches the database,
and never printed. Earlier versions are kept, sealed.

Names are letters, digits, '.', '-' and '_' in segments separated by '/':
billing/db-password.`,
		Example: `  printf %s "$DB_PASSWORD" | stepgate secrets put billing/db --workspace 'billing-*'
  stepgate secrets put billing/tls-key --workspace billing-prod --from-file key.pem --description "TLS key of billing.example.com"`,
		Args: cobra.ExactArgs(1),
		RunE: f.withStore(env, func(ctx context.Context, cfg *config.Config, st store.Store, args []string) error {
			value, err := readSecretValue(env, fromFile)
			if err != nil {
				return err
			}
			defer clear(value)
			s, err := secretService(cfg, st)
			if err != nil {
				return err
			}
			v, err := s.Put(ctx, args[0], workspace, description, value, adminActor(env))
			if err != nil {
				return secretExit(err)
			}
			fmt.Fprintf(env.Stderr, "secret %s version %d written for workspaces %s (sealed under master key %s)\n", v.Name, v.Version, v.Workspace, v.KeyID)
			return nil
		}),
	}
	f.add(cmd)
	cmd.Flags().StringVar(&workspace, "workspace", "", "glob of the workspaces whose checks may read it, such as 'billing-*' (required)")
	cmd.Flags().StringVar(&description, "description", "", "what the secret is, shown in lists and reviews")
	cmd.Flags().StringVar(&fromFile, "from-file", "", "read the value from this file, byte for byte (default: standard input)")
	return cmd
}

// readSecretValue reads a value from a file, or from standard input
// without one trailing newline. A terminal is refused: the value would
// echo.
func readSecretValue(env Env, file string) ([]byte, error) {
	var r io.Reader = env.Stdin
	if file != "" {
		f, err := os.Open(resolve(env, file))
		if err != nil {
			return nil, exit(ExitUsage, fmt.Errorf("--from-file: %w", err))
		}
		defer f.Close()
		r = f
	} else if w, ok := env.Stdin.(io.Writer); ok && env.isTerminal(w) {
		return nil, exit(ExitUsage, errors.New("the value is read from standard input, which is a terminal: pipe it in, or use --from-file"))
	}
	b, err := io.ReadAll(io.LimitReader(r, secret.MaxValueBytes+2))
	if err != nil {
		clear(b)
		return nil, exit(ExitUsage, fmt.Errorf("reading the value: %w", err))
	}
	if file == "" {
		if bytes.HasSuffix(b, []byte("\r\n")) {
			b = b[:len(b)-2]
		} else if bytes.HasSuffix(b, []byte("\n")) {
			b = b[:len(b)-1]
		}
	}
	return b, nil
}

func newSecretsListCmd(env Env) *cobra.Command {
	var (
		f      dbFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List secrets: names, workspaces, versions, who wrote them and when (never values)",
		Args:  cobra.NoArgs,
		RunE: f.withStore(env, func(ctx context.Context, _ *config.Config, st store.Store, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			// Listing needs no master key: nothing is opened.
			all, err := secret.New(st, nil, time.Now).List(ctx)
			if err != nil {
				return exit(ExitInternal, err)
			}
			if output == "json" {
				type row struct {
					Name        string    `json:"name"`
					Workspace   string    `json:"workspace"`
					Version     int       `json:"version"`
					Description string    `json:"description,omitempty"`
					KeyID       string    `json:"key_id,omitempty"`
					Removed     bool      `json:"removed,omitempty"`
					UpdatedBy   string    `json:"updated_by"`
					UpdatedAt   time.Time `json:"updated_at"`
				}
				rows := []row{}
				for _, v := range all {
					rows = append(rows, row{v.Name, v.Workspace, v.Version, v.Description, v.KeyID, v.Deleted, v.CreatedBy, v.CreatedAt})
				}
				return writeJSONOut(env.Stdout, rows)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tWORKSPACES\tVERSION\tUPDATED\tBY\tSTATUS\tDESCRIPTION")
			for _, v := range all {
				status := "sealed under " + v.KeyID
				if v.Deleted {
					status = "removed"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", v.Name, printable(v.Workspace), v.Version, v.CreatedAt.Format(time.RFC3339), printable(v.CreatedBy), status, printable(v.Description))
			}
			return tw.Flush()
		}),
	}
	f.add(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func newSecretsRmCmd(env Env) *cobra.Command {
	var f dbFlags
	cmd := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a secret: it is released no more (a tombstone; earlier versions stay sealed)",
		Args:  cobra.ExactArgs(1),
		RunE: f.withStore(env, func(ctx context.Context, _ *config.Config, st store.Store, args []string) error {
			v, err := secret.New(st, nil, time.Now).Remove(ctx, args[0], adminActor(env))
			if err != nil {
				return secretExit(err)
			}
			fmt.Fprintf(env.Stderr, "secret %s removed (version %d is its tombstone); checks naming it are refused, and grants already issued release nothing\n", args[0], v)
			return nil
		}),
	}
	f.add(cmd)
	return cmd
}

func newSecretsRotateCmd(env Env) *cobra.Command {
	var f dbFlags
	cmd := &cobra.Command{
		Use:   "rotate-master",
		Short: "Re-seal every secret's data key under the current master key",
		Long: `Re-seal, under the current master key (server.master_key_file), the data key
of every secret version sealed under another: one of
server.previous_master_key_files. Values are not re-encrypted. Servers keep
releasing throughout, as long as they hold both keys. Run it again after an
interruption: it finishes the job.

Rotating the master key without downtime:
  1. Give every server the new key as server.master_key_file and the old
     one in server.previous_master_key_files, and restart them one by one:
     each opens with either key.
  2. Run stepgate secrets rotate-master with the same configuration.
  3. Remove the old key from previous_master_key_files, and restart.

Besides the secrets' data keys, it re-seals the grant-signing keys still
published and every TOTP seed, which the master key seals too.`,
		Args: cobra.NoArgs,
		RunE: f.withStore(env, func(ctx context.Context, cfg *config.Config, st store.Store, _ []string) error {
			s, err := secretService(cfg, st)
			if err != nil {
				return err
			}
			n, err := s.RotateMaster(ctx, adminActor(env))
			if err != nil {
				return secretExit(fmt.Errorf("after re-sealing %d data keys: %w", n, err))
			}
			master, _, err := app.LoadKeyring(cfg.Server, false)
			if err != nil {
				return exit(ExitUsage, err)
			}
			fmt.Fprintf(env.Stderr, "re-sealed %d secret data keys under master key %s\n", n, master.ID())
			keysN, seedsN, err := resealOthers(ctx, st, master, adminActor(env))
			if err != nil {
				return exit(ExitInternal, fmt.Errorf("re-sealing signing keys and TOTP seeds (the secrets are done): %w", err))
			}
			fmt.Fprintf(env.Stderr, "re-sealed %d grant-signing keys and %d TOTP seeds under master key %s\n", keysN, seedsN, master.ID())
			return nil
		}),
	}
	f.add(cmd)
	return cmd
}

// secretAsk is what secrets get and exec share: a secret.read check naming
// the secrets, waited on until it is decided, and its grant exchanged for
// the values.
type secretAsk struct {
	serverFlags
	workspace   string
	environment string
	wait        time.Duration
}

func (o *secretAsk) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.workspace, "workspace", "", "workspace the secrets are asked for, e.g. billing-prod (required)")
	f.StringVar(&o.environment, "environment", "", "environment the pipeline deploys to, e.g. prod")
	f.DurationVar(&o.wait, "wait", 30*time.Minute, "how long to wait for approval; 0 returns at once")
	o.serverFlags.add(f)
}

// ask creates the check, waits for it, and exchanges its grant. Messages
// go to standard error; the caller clears the values once used.
func (o *secretAsk) ask(ctx context.Context, env Env, secrets []string) (*api.ReleaseResponse, error) {
	switch {
	case strings.TrimSpace(o.workspace) == "":
		return nil, exit(ExitUsage, errors.New("--workspace is required"))
	case o.wait < 0:
		return nil, exit(ExitUsage, errors.New("--wait must not be negative"))
	case len(secrets) == 0:
		return nil, exit(ExitUsage, errors.New("no secret named"))
	}
	for _, s := range secrets {
		_, name, ok := strings.Cut(s, "=")
		if !ok {
			name = s
		}
		if secret.External(name) {
			return nil, exit(ExitUsage, fmt.Errorf("%s is kept elsewhere, not in stepgate: ask for a grant naming it with stepgate check --kind secret.read --secret %s, and present the grant to its store", name, name))
		}
	}
	c, err := o.client(env, true)
	if err != nil {
		return nil, err
	}
	ch, err := c.CreateCheck(ctx, client.CheckRequest{
		Kind: "secret.read", Workspace: o.workspace, Environment: o.environment,
		Pipeline: pipelineIdentity(env.Getenv), Secrets: secrets,
	})
	if err != nil {
		return nil, serverError("creating check", err)
	}
	r := &checkRun{env: env, o: checkOptions{output: "json", wait: o.wait}, c: c, reviewURL: ch.ReviewURL}
	if err := r.describe(ch); err != nil {
		return nil, err
	}
	for _, s := range ch.Secrets {
		to := "standard output"
		if s.Env != "" {
			to = "$" + s.Env
		}
		fmt.Fprintf(env.Stderr, "Secret:     %s → %s\n", printable(s.Name), printable(to))
	}
	if ch.State == statePending {
		if ch, err = r.wait(ctx, ch); err != nil {
			return nil, err
		}
	}
	if ch.State != stateAllowed && ch.State != stateApproved {
		return nil, r.conclude(ch)
	}
	if ch.Grant == "" {
		return nil, exit(ExitInternal, fmt.Errorf("check %s is %s but the server sent no grant", printable(ch.ID), ch.State))
	}
	if ch.State == stateApproved {
		fmt.Fprintf(env.Stderr, "Approved:   %s\n", approvers(ch.Approvals))
	}
	rel, err := c.Release(ctx, ch.Grant)
	if err != nil {
		return nil, releaseError(err)
	}
	if rel.CheckID != ch.ID {
		clearReleased(rel)
		return nil, exit(ExitInternal, fmt.Errorf("the server released the secrets of check %q, not of %q", printable(rel.CheckID), ch.ID))
	}
	fmt.Fprintf(env.Stderr, "Released:   %s under grant %s of check %s\n", releasedList(rel), printable(rel.GrantID), printable(rel.CheckID))
	return rel, nil
}

func releasedList(rel *api.ReleaseResponse) string {
	var parts []string
	for _, s := range rel.Secrets {
		parts = append(parts, fmt.Sprintf("%s (version %d)", printable(s.Name), s.Version))
	}
	return strings.Join(parts, ", ")
}

func clearReleased(rel *api.ReleaseResponse) {
	if rel == nil {
		return
	}
	for i := range rel.Secrets {
		clear(rel.Secrets[i].Value)
	}
}

// releaseError maps a refused release to its exit code: 5 for a grant the
// server refused (used, invalid, another pipeline's, a secret removed).
func releaseError(err error) error {
	var e *client.Error
	if errors.As(err, &e) {
		switch {
		case e.Status == http.StatusConflict:
			return exit(ExitGrant, fmt.Errorf("secrets not released: %w", err))
		case e.Status == http.StatusUnauthorized && e.Code != api.CodeInvalidGrant:
			return exit(ExitInternal, fmt.Errorf("releasing secrets: %w (is $%s a valid API token?)", err, envToken))
		case e.Code == api.CodeInvalidGrant, e.Status == http.StatusForbidden, e.Status == http.StatusBadRequest, e.Status == http.StatusNotFound:
			return exit(ExitGrant, fmt.Errorf("secrets not released: %w", err))
		}
	}
	return exit(ExitInternal, fmt.Errorf("releasing secrets: %w", err))
}

func newSecretsGetCmd(env Env) *cobra.Command {
	var (
		o      secretAsk
		reveal bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "get NAME... --workspace W [--wait 30m]",
		Short: "Ask for secrets and print them once released (not on a terminal, unless --reveal)",
		Long: `Ask the server for secrets: a secret.read check naming them, which the policy
decides (by default a passkey, aal 3; in production also another person's
approval). Once allowed or approved, its grant is exchanged once for the
values, which are printed on standard output: one secret as it is, several
(or --output json) as a JSON object of name to value (text values: bytes
that are not UTF-8 are replaced in JSON; get binary values one at a time). Standard output must
not be a terminal (pipe or redirect it), unless --reveal.

Prefer stepgate exec, which gives the values to one command's environment
and nowhere else.

Exit codes:
  0  released and printed
  3  still pending when --wait ran out
  4  denied, rejected or expired
  5  the grant was refused when exchanged (already used...)
  2  bad input or usage (a secret that does not exist for the workspace)
  1  the server could not be reached or failed`,
		Example: `  stepgate secrets get billing/db --workspace billing-prod > /dev/shm/db-password`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "raw" && output != "json" {
				return exit(ExitUsage, fmt.Errorf("--output %q: want raw or json", output))
			}
			if env.isTerminal(env.Stdout) && !reveal {
				return exit(ExitUsage, errors.New("standard output is a terminal: redirect it, or give --reveal to show the values on screen"))
			}
			rel, err := o.ask(cmd.Context(), env, args)
			if err != nil {
				return err
			}
			defer clearReleased(rel)
			if len(rel.Secrets) == 1 && output == "raw" {
				_, err = env.Stdout.Write(rel.Secrets[0].Value)
			} else {
				m := map[string]string{}
				for _, s := range rel.Secrets {
					m[s.Name] = string(s.Value)
				}
				err = json.NewEncoder(env.Stdout).Encode(m)
			}
			if err != nil {
				return exit(ExitInternal, fmt.Errorf("writing the values: %w", err))
			}
			return nil
		},
	}
	o.add(cmd)
	cmd.Flags().BoolVar(&reveal, "reveal", false, "print the values even on a terminal")
	cmd.Flags().StringVarP(&output, "output", "o", "raw", "raw (one secret, as it is) or json (name to value)")
	return cmd
}

func newExecCmd(env Env) *cobra.Command {
	var (
		o       secretAsk
		secrets []string
	)
	cmd := &cobra.Command{
		Use:   "exec --secret ENV=NAME... --workspace W [--wait 30m] -- COMMAND [ARGS...]",
		Short: "Run a command with secrets in its environment, after approval, once",
		Long: `Ask for secrets (a secret.read check naming them, decided by the policy: by
default a passkey, aal 3; in production also another person's approval),
wait for approval, exchange the grant once for the values, and run COMMAND
with each secret in the environment variable --secret names. The values go
to COMMAND's environment and nowhere else: not to disk, not to the output,
not to the server's logs or audit log. COMMAND's exit code is passed
through, and reported to the server.

Exit codes:
  N  the exit code of COMMAND once it ran (128+S when a signal S ended it)
  3  still pending when --wait ran out (run the same exec again to resume)
  4  denied, rejected or expired
  5  the grant was refused when exchanged; COMMAND did not run
  2  bad input or usage: no --secret, a secret that does not exist for the
     workspace, COMMAND not found; COMMAND did not run
  1  the server could not be reached or failed; COMMAND did not run`,
		Example: `  stepgate exec --secret PGPASSWORD=billing/db --workspace billing-prod -- psql -h db.internal -U billing`,
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return exit(ExitUsage, errors.New("no command to run: give it after --, e.g. stepgate exec --secret PGPASSWORD=billing/db --workspace billing-prod -- psql"))
			}
			for _, s := range secrets {
				if k, _, ok := strings.Cut(s, "="); !ok || k == "" {
					return exit(ExitUsage, fmt.Errorf("--secret %q: want ENV=NAME, such as PGPASSWORD=billing/db", s))
				}
			}
			path, err := lookCommand(env, args[0])
			if err != nil {
				return exit(ExitUsage, fmt.Errorf("%w; nothing was asked", err))
			}
			rel, err := o.ask(cmd.Context(), env, secrets)
			if err != nil {
				return err
			}
			defer clearReleased(rel)
			return runWithSecrets(cmd.Context(), env, o.serverFlags, path, args, rel)
		},
	}
	o.add(cmd)
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringArrayVar(&secrets, "secret", nil, "ENV=NAME: put secret NAME in $ENV of COMMAND (repeatable)")
	return cmd
}

// secretEnv is environ with the released secrets set; a value that cannot
// be an environment variable's (a NUL byte) is refused.
func secretEnv(environ []string, rel *api.ReleaseResponse) ([]string, error) {
	out := environ
	for _, s := range rel.Secrets {
		if s.Env == "" {
			continue
		}
		if bytes.IndexByte(s.Value, 0) >= 0 {
			return nil, fmt.Errorf("secret %s holds a NUL byte, which no environment variable can: use stepgate secrets get", s.Name)
		}
		prefix := s.Env + "="
		kept := out[:0:0]
		for _, kv := range out {
			if !strings.HasPrefix(kv, prefix) {
				kept = append(kept, kv)
			}
		}
		out = append(kept, prefix+string(s.Value))
	}
	return out, nil
}

// runWithSecrets runs COMMAND as apply does, with the secrets in its
// environment, reports the outcome, and passes its exit code through.
func runWithSecrets(ctx context.Context, env Env, sf serverFlags, path string, args []string, rel *api.ReleaseResponse) error {
	claims := releaseClaims(rel)
	childEnv, err := secretEnv(childEnv(os.Environ(), claims), rel)
	if err != nil {
		return exit(ExitUsage, fmt.Errorf("%w; %s not run", err, args[0]))
	}
	code, took := runCommandEnv(env, path, args, childEnv)
	clear(childEnv) // the strings themselves are immutable; drop the references
	if c, err := sf.client(env, true); err == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := c.ReportOutcome(rctx, rel.CheckID, api.OutcomeRequest{GrantID: rel.GrantID, ExitCode: code, DurationMS: took.Milliseconds()}); err != nil {
			fmt.Fprintf(env.Stderr, "stepgate: warning: reporting the outcome of check %s: %v\n", printable(rel.CheckID), err)
		}
	}
	fmt.Fprintf(env.Stderr, "stepgate: %s exited with %d after %s\n", printable(args[0]), code, short(took))
	if code == 0 {
		return nil
	}
	return decisionError{code}
}

// releaseClaims are the claims childEnv needs of a release: the check and
// the grant the command runs under.
func releaseClaims(rel *api.ReleaseResponse) *grant.Claims {
	return &grant.Claims{CheckID: rel.CheckID, ID: rel.GrantID}
}

// resealOthers re-seals, in one transaction, what else the master key
// seals: the grant-signing keys still published and every TOTP seed, and
// audits it. (WebAuthn ceremonies in flight are sealed for minutes only.)
func resealOthers(ctx context.Context, st store.Store, master *keys.Master, actor string) (signing, seeds int, err error) {
	checkpointKeys := 0
	now := time.Now().UTC()
	err = st.InTx(ctx, func(tx store.Tx) error {
		signing, seeds = 0, 0
		n, err := keys.NewRing(master, time.Now).Reseal(ctx, tx)
		if err != nil {
			return err
		}
		signing = n
		// The checkpoint keys too: a server with the new key alone signs
		// checkpoints with them, and audit verify trusts them.
		cps, err := keys.NewCheckpointKeys(master, time.Now).Reseal(ctx, tx)
		if err != nil {
			return err
		}
		checkpointKeys = cps
		users, err := tx.ListUsers(ctx)
		if err != nil {
			return fmt.Errorf("listing users: %w", err)
		}
		tp := totp.New(master, "stepgate", time.Now)
		for _, u := range users {
			creds, err := tx.ListCredentials(ctx, u.ID)
			if err != nil {
				return fmt.Errorf("listing factors of %s: %w", u.Name, err)
			}
			for _, c := range creds {
				ok, err := tp.Reseal(c)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				if err := tx.UpdateCredential(ctx, c); err != nil {
					return fmt.Errorf("re-sealing factor %s: %w", c.ID, err)
				}
				seeds++
			}
		}
		data, _ := json.Marshal(map[string]any{"key_id": master.ID(), "signing_keys": signing, "checkpoint_keys": checkpointKeys, "totp_seeds": seeds})
		return tx.AppendAudit(ctx, &audit.Event{Time: now, Type: audit.SecretResealed, Actor: actor, Subject: "master-key:" + master.ID(), Data: data})
	})
	return signing, seeds, err
}
