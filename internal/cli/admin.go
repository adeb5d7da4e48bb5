package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/checkpoint"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/store"
)

// ExitTampered is the exit code of `audit verify` when the chain is broken.
const ExitTampered = 6

// adminActor names who did something from the command line.
func adminActor(env Env) string {
	if u := env.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}

func newTokensCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Create, list and revoke the API tokens pipelines use",
		Long: `Manage API tokens, acting on the configured database directly. A pipeline
sends its token as STEPGATE_TOKEN; a token restricted to workspaces (glob
patterns) cannot ask for others. Only a SHA-256 of each token is stored.`,
	}
	cmd.AddCommand(newTokensCreateCmd(env), newTokensListCmd(env), newTokensRevokeCmd(env))
	return cmd
}

func newTokensCreateCmd(env Env) *cobra.Command {
	var (
		f          dbFlags
		name       string
		owner      string
		workspaces []string
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME [--workspace GLOB]... [--owner PERSON]",
		Short: "Create a token and print it once",
		Long: `Create an API token and print it on standard output, alone on one line, so
that it can be piped into a secret store. It is shown only this once.

A token without --owner is a pipeline's own identity: its checks have the
token's name as requester, and any eligible person may approve them. A token
with --owner PERSON acts for that person: its checks have PERSON as
requester, who can never approve them, and it stops working when PERSON is
disabled. Names are compared without regard to case or Unicode form, and a
token named like a person is refused unless that person owns it.`,
		Example: `  stepgate tokens create --name billing-ci --workspace 'billing-*' | gh secret set STEPGATE_TOKEN
  stepgate tokens create --name alice-laptop --owner alice --workspace 'billing-*'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return exit(ExitUsage, errors.New("--name is required"))
			}
			_, st, err := f.openStore(cmd.Context(), env)
			if err != nil {
				return err
			}
			defer st.Close()
			secret, t, err := gate.CreateToken(cmd.Context(), st, gate.TokenSpec{Name: name, Workspaces: workspaces, Owner: owner}, adminActor(env), time.Now())
			if errors.Is(err, gate.ErrBadRequest) || errors.Is(err, gate.ErrConflict) {
				return exit(ExitUsage, err)
			}
			if err != nil {
				return exit(ExitInternal, err)
			}
			fmt.Fprintln(env.Stdout, secret)
			fmt.Fprintf(env.Stderr, "created token %s (%s); it is not shown again\n", t.ID, t.Name)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&name, "name", "", "a name for the token, such as the pipeline it is for")
	cmd.Flags().StringArrayVar(&workspaces, "workspace", nil, "workspace glob the token may ask for (repeatable; none: any workspace)")
	cmd.Flags().StringVar(&owner, "owner", "", "the person the token acts for: the requester of its checks, who can never approve them (default: none, a pipeline's token)")
	return cmd
}

func newTokensListCmd(env Env) *cobra.Command {
	var (
		f      dbFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: f.withStore(env, func(ctx context.Context, _ *config.Config, st store.Store, _ []string) error {
			ts, err := st.ListTokens(ctx)
			if err != nil {
				return exit(ExitInternal, err)
			}
			if output == "json" {
				type row struct {
					ID         string     `json:"id"`
					Name       string     `json:"name"`
					Workspaces []string   `json:"workspaces"`
					CreatedAt  time.Time  `json:"created_at"`
					RevokedAt  *time.Time `json:"revoked_at,omitempty"`
				}
				rows := []row{}
				for _, t := range ts {
					r := row{ID: t.ID, Name: t.Name, Workspaces: t.Workspaces, CreatedAt: t.CreatedAt}
					if !t.RevokedAt.IsZero() {
						rv := t.RevokedAt
						r.RevokedAt = &rv
					}
					rows = append(rows, r)
				}
				return json.NewEncoder(env.Stdout).Encode(rows)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tWORKSPACES\tCREATED\tSTATUS")
			for _, t := range ts {
				status := "active"
				if !t.RevokedAt.IsZero() {
					status = "revoked " + t.RevokedAt.Format(time.RFC3339)
				}
				ws := strings.Join(t.Workspaces, ",")
				if ws == "" {
					ws = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, ws, t.CreatedAt.Format(time.RFC3339), status)
			}
			return tw.Flush()
		}),
	}
	f.add(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func newTokensRevokeCmd(env Env) *cobra.Command {
	var f dbFlags
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: it is refused from now on",
		Args:  cobra.ExactArgs(1),
		RunE: f.withStore(env, func(ctx context.Context, _ *config.Config, st store.Store, args []string) error {
			err := gate.RevokeToken(ctx, st, args[0], adminActor(env), time.Now())
			if errors.Is(err, gate.ErrNotFound) {
				return exit(ExitUsage, err)
			}
			if err != nil {
				return exit(ExitInternal, err)
			}
			fmt.Fprintf(env.Stderr, "revoked token %s\n", args[0])
			return nil
		}),
	}
	f.add(cmd)
	return cmd
}

func newKeysCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List and rotate the keys that sign grants",
		Long: `Manage the Ed25519 keys that sign grants. Private keys are stored sealed
under the master key. After a rotation the old public key stays published in
the JWKS until every grant it signed has expired.`,
	}
	var (
		f      dbFlags
		fl     dbFlags
		output string
	)
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Make a new signing key the current one",
		Args:  cobra.NoArgs,
		RunE: f.withStore(env, func(ctx context.Context, cfg *config.Config, st store.Store, _ []string) error {
			master, _, err := app.LoadMaster(cfg.Server.MasterKeyFile, false)
			if err != nil {
				return exit(ExitUsage, err)
			}
			ring := keys.NewRing(master, time.Now, keys.WithAlgorithm(cfg.Server.GrantAlgorithm))
			k, err := ring.Rotate(ctx, st, time.Duration(cfg.Server.GrantTTL))
			if err != nil {
				return exit(ExitInternal, err)
			}
			data, _ := json.Marshal(map[string]string{"kid": k.ID})
			err = st.InTx(ctx, func(tx store.Tx) error {
				return tx.AppendAudit(ctx, &audit.Event{Time: time.Now(), Type: audit.KeyRotated, Actor: adminActor(env), Subject: "key:" + k.ID, Data: data})
			})
			if err != nil {
				return exit(ExitInternal, err)
			}
			fmt.Fprintln(env.Stdout, k.ID)
			fmt.Fprintf(env.Stderr, "key %s (%s) signs grants from now on; older keys stay published until their grants expire\n", k.ID, k.Algorithm)
			return nil
		}),
	}
	f.add(rotate)
	list := &cobra.Command{
		Use:   "list",
		Short: "List signing keys and whether they sign or are only published",
		Args:  cobra.NoArgs,
		RunE: fl.withStore(env, func(ctx context.Context, _ *config.Config, st store.Store, _ []string) error {
			ks, err := st.ListSigningKeys(ctx)
			if err != nil {
				return exit(ExitInternal, err)
			}
			if output == "json" {
				type row struct {
					ID         string     `json:"kid"`
					Algorithm  string     `json:"alg"`
					CreatedAt  time.Time  `json:"created_at"`
					RetiredAt  *time.Time `json:"retired_at,omitempty"`
					PublishEnd *time.Time `json:"publish_end,omitempty"`
				}
				rows := []row{}
				for _, k := range ks {
					r := row{ID: k.ID, Algorithm: k.Algorithm, CreatedAt: k.CreatedAt}
					if !k.RetiredAt.IsZero() {
						t := k.RetiredAt
						r.RetiredAt = &t
					}
					if !k.PublishEnd.IsZero() {
						t := k.PublishEnd
						r.PublishEnd = &t
					}
					rows = append(rows, r)
				}
				return json.NewEncoder(env.Stdout).Encode(rows)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KID\tALG\tCREATED\tSTATUS")
			for _, k := range ks {
				status := "signing"
				switch {
				case !k.PublishEnd.IsZero() && time.Now().After(k.PublishEnd):
					status = "unpublished"
				case !k.RetiredAt.IsZero():
					status = "published until " + k.PublishEnd.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.CreatedAt.Format(time.RFC3339), status)
			}
			return tw.Flush()
		}),
	}
	fl.add(list)
	list.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.AddCommand(rotate, list)
	return cmd
}

func newAuditCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Export and verify the tamper-evident audit log",
		Long: `Every step (a check created and assessed, approvals and rejections, grants
issued, consumed and refused, apply outcomes, tokens created and revoked,
keys rotated) is appended to a hash-chained log: each event carries the
SHA-256 of the one before it.`,
	}
	var (
		fe              dbFlags
		fv              dbFlags
		since           string
		publicURL       string
		checkpointsFile string
		output          string
		breakGlass      bool
	)
	export := &cobra.Command{
		Use:   "export [--since TIME] [--break-glass]",
		Short: "Write the audit log as JSON lines, oldest first",
		Example: `  stepgate audit export --since 2026-11-01T00:00:00Z > audit.jsonl
  stepgate audit export --since 24h | jq 'select(.type == "grant.consumed")'
  stepgate audit export --break-glass   # break-glass requests, uses, refusals, reviews`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var from time.Time
			if since != "" {
				if d, err := time.ParseDuration(since); err == nil {
					from = time.Now().Add(-d)
				} else if t, err := time.Parse(time.RFC3339, since); err == nil {
					from = t
				} else {
					return exit(ExitUsage, fmt.Errorf("--since %q: want a time such as 2026-11-01T00:00:00Z or a duration such as 24h", since))
				}
			}
			_, st, err := fe.openStore(cmd.Context(), env)
			if err != nil {
				return err
			}
			defer st.Close()
			enc := json.NewEncoder(env.Stdout)
			return forEachEvent(cmd.Context(), st, func(e *audit.Event) error {
				if e.Time.Before(from) || (breakGlass && !audit.IsBreakGlass(e)) {
					return nil
				}
				return enc.Encode(e)
			})
		},
	}
	fe.add(export)
	export.Flags().StringVar(&since, "since", "", "only events at or after this time (RFC 3339) or this long ago (24h)")
	export.Flags().BoolVar(&breakGlass, "break-glass", false, "only the events of break-glass: requests, uses (with the approval and grant they made), refusals and reviews")
	verify := &cobra.Command{
		Use:   "verify [--checkpoints FILE]",
		Short: "Check the hash chain, its signed checkpoints and every stored passkey approval",
		Long: `Read the whole audit log and check every event's hash and its link to the
event before it; check every signed checkpoint (its Ed25519 signature, by a
checkpoint key that opens under the master key, and that the event at its
sequence still has the hash it signed); and that no checkpoint written at a
grant's issuance is gone. With --checkpoints, the checkpoint file the server
appends to (server.audit.checkpoint_file) is checked the same way and
against the database, so that a database whose newest events and
checkpoints were both removed is found out. Events after the newest valid
checkpoint are reported as unsealed: nothing signed vouches for them yet.

Then every passkey assertion stored with an approval is verified again,
against the credential's public key and the challenge recomputed from the
check, the plan digest stored with the check and the nonce (so an approval
edited or invented in the database, or made for another plan, is found).
Passkeys are bound to the server's public URL: give the same one
(--public-url, server.public_url).

The checkpoint keys are sealed under the master key: give it as for serve
(--master-key-file, server.master_key_file); the one serve --dev created
next to a SQLite database is found on its own.

What is found is listed with a kind: chain_broken, truncated, rechained,
event_missing, bad_signature, unknown_key, checkpoint_missing,
no_checkpoint, sink_unreadable, evidence.

Exit codes:
  0  the log is intact (unsealed events, if any, are listed)
  6  something was found: tampered with (each finding is listed)
  2  bad usage: no master key, a wrong one, no checkpoint file there
  1  the log could not be read`,
		Example: `  stepgate audit verify --master-key-file /etc/stepgate/master.key
  stepgate audit verify --checkpoints /var/log/stepgate/checkpoints.jsonl --output json`,
		Args: cobra.NoArgs,
		RunE: fv.withStore(env, func(ctx context.Context, cfg *config.Config, st store.Store, _ []string) error {
			if output != "text" && output != "json" {
				return exit(ExitUsage, fmt.Errorf("--output %q: want text or json", output))
			}
			ks, err := checkpointKeys(ctx, cfg, st)
			if err != nil {
				return err
			}
			var opts checkpoint.Options
			if checkpointsFile != "" {
				opts.HaveFile = true
				if opts.File, opts.FileProblems, err = checkpoint.ReadFile(checkpointsFile); err != nil {
					return exit(ExitUsage, fmt.Errorf("--checkpoints: %w", err))
				}
			}
			var approved []string // in the order of the log, each once
			seen := map[string]bool{}
			opts.Visit = func(e *audit.Event) {
				if e.Type == audit.CheckApproval && !strings.Contains(string(e.Data), `"refused"`) && !seen[e.Subject] {
					seen[e.Subject] = true
					approved = append(approved, e.Subject)
				}
			}
			rep, err := checkpoint.Verify(ctx, st, ks, opts)
			if err != nil {
				return exit(ExitInternal, err)
			}
			if publicURL == "" {
				publicURL = app.PublicURL(cfg.Server) // as serve picks it
			}
			verifier := func() (*webauthn.WebAuthn, error) {
				if publicURL == "" {
					return nil, exit(ExitUsage, errors.New("passkey approvals are stored: give the server's public URL (--public-url or server.public_url) to verify their assertions"))
				}
				u, err := url.Parse(publicURL)
				if err != nil || u.Host == "" {
					return nil, exit(ExitUsage, fmt.Errorf("--public-url %q is not a URL", publicURL))
				}
				wa, err := webauthn.New(u.Hostname(), u.Scheme+"://"+u.Host, "stepgate", time.Now)
				if err != nil {
					return nil, exit(ExitUsage, err)
				}
				return wa, nil
			}
			passkeys, err := gate.VerifyEvidence(ctx, st, verifier, approved)
			var ee *gate.EvidenceError
			var xe *exitError
			switch {
			case errors.As(err, &ee):
				rep.Findings = append(rep.Findings, checkpoint.Finding{Kind: "evidence", Message: err.Error()})
			case errors.As(err, &xe):
				return err
			case err != nil:
				return exit(ExitInternal, err)
			}
			if output == "json" {
				err = json.NewEncoder(env.Stdout).Encode(struct {
					Intact bool `json:"intact"`
					*checkpoint.Report
					CheckpointFile string `json:"checkpoint_file,omitempty"`
					Passkeys       int    `json:"passkey_approvals_verified"`
				}{rep.OK(), rep, checkpointsFile, passkeys})
				if err != nil {
					return exit(ExitInternal, err)
				}
			} else {
				printVerifyReport(env, rep, checkpointsFile, passkeys)
			}
			if !rep.OK() {
				f := rep.Findings[0]
				return exit(ExitTampered, fmt.Errorf("audit log tampered with: %d finding(s), the first: %s: %s", len(rep.Findings)+rep.Omitted, f.Kind, f.Message))
			}
			return nil
		}),
	}
	fv.add(verify)
	verify.Flags().StringVar(&checkpointsFile, "checkpoints", "", "the checkpoint file the server appends to (server.audit.checkpoint_file), to compare the database with")
	verify.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	verify.Flags().StringVar(&publicURL, "public-url", "", "the server's public URL, which passkeys are bound to (default $"+config.EnvPublicURL+", server.public_url)")
	cmd.AddCommand(export, verify)
	return cmd
}

// checkpointKeys returns the checkpoint keys to trust: those that open
// under the master key. A database without checkpoint keys needs no master
// key (its checkpoints, if any, are then unknown). A master key that opens
// neither a checkpoint key nor a grant-signing key is taken for the wrong
// one (a usage error), rather than every checkpoint for a forgery.
func checkpointKeys(ctx context.Context, cfg *config.Config, st store.Store) (checkpoint.Keys, error) {
	all, err := st.ListCheckpointKeys(ctx)
	if err != nil {
		return checkpoint.Keys{}, exit(ExitInternal, err)
	}
	if len(all) == 0 {
		return checkpoint.Keys{}, nil
	}
	path := cfg.Server.MasterKeyFile
	if path == "" {
		if dev := app.DevMasterKeyPath(cfg.Server.Database); strings.HasPrefix(cfg.Server.Database, "sqlite://") && fileExists(dev) {
			path = dev
		}
	}
	if path == "" {
		return checkpoint.Keys{}, exit(ExitUsage, fmt.Errorf("the audit checkpoints are signed with a key sealed under the master key: give it (--master-key-file, %s or server.master_key_file)", config.EnvMasterKeyFile))
	}
	master, err := keys.LoadMaster(path)
	if err != nil {
		return checkpoint.Keys{}, exit(ExitUsage, err)
	}
	trusted, untrusted, err := keys.NewCheckpointKeys(master, time.Now).Trusted(ctx, st)
	if err != nil {
		return checkpoint.Keys{}, exit(ExitInternal, err)
	}
	if len(trusted) == 0 {
		if _, err := keys.NewRing(master, time.Now).SigningKey(ctx, st); errors.Is(err, keys.ErrDecrypt) {
			return checkpoint.Keys{}, exit(ExitUsage, fmt.Errorf("the master key %s opens none of the database's keys: is it the server's?", path))
		}
	}
	return checkpoint.Keys{Trusted: trusted, Untrusted: untrusted}, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// printVerifyReport writes what audit verify found, for people.
func printVerifyReport(env Env, r *checkpoint.Report, file string, passkeys int) {
	w := env.Stdout
	if r.Events == 0 {
		fmt.Fprintln(w, "audit log: empty")
	} else {
		fmt.Fprintf(w, "audit log: %d events, last sequence %d, head hash %s\n", r.Events, r.HeadSeq, r.HeadHash)
	}
	where := fmt.Sprintf("%d in the database", r.Checkpoints)
	if file != "" {
		where += fmt.Sprintf(", %d in %s", r.FileCheckpoints, file)
	}
	if cp := r.LastCheckpoint; cp != nil {
		fmt.Fprintf(w, "checkpoints: %s; the newest valid one signs sequence %d (%s, key %s)\n", where, cp.Seq, cp.Time.Format(time.RFC3339), cp.KeyID)
	} else {
		fmt.Fprintf(w, "checkpoints: %s; none valid that matches the log\n", where)
	}
	if u := r.Unsealed; u.Count > 0 {
		oldest := ""
		if u.Oldest != nil {
			oldest = ", the oldest from " + u.Oldest.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "unsealed: %d event(s) after the newest checkpoint (sequences %d to %d%s): nothing signed vouches for them yet\n", u.Count, u.From, u.To, oldest)
	} else if r.Events > 0 {
		fmt.Fprintln(w, "unsealed: none")
	}
	fmt.Fprintf(w, "passkey approvals verified: %d\n", passkeys)
	for _, f := range r.Findings {
		where := ""
		if f.Source != "" {
			where = " (" + f.Source + ")"
		}
		fmt.Fprintf(w, "TAMPERED %s%s: %s\n", f.Kind, where, f.Message)
	}
	if r.Omitted > 0 {
		fmt.Fprintf(w, "TAMPERED and %d more finding(s)\n", r.Omitted)
	}
	if r.OK() {
		fmt.Fprintln(w, "audit log intact")
	}
}

// auditReader is what reading the audit log needs.
type auditReader interface {
	ListAudit(ctx context.Context, afterSeq int64, limit int) ([]*audit.Event, error)
}

// auditPage is how many events forEachEvent reads at a time.
const auditPage = 1000

// forEachEvent calls fn with every event of the audit log, oldest first.
func forEachEvent(ctx context.Context, st auditReader, fn func(*audit.Event) error) error {
	var after int64
	for {
		page, err := st.ListAudit(ctx, after, auditPage)
		if err != nil {
			return exit(ExitInternal, fmt.Errorf("reading audit log: %w", err))
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
			after = e.Seq
		}
		if len(page) < auditPage {
			return nil
		}
	}
}
