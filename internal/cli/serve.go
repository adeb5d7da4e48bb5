package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/requestid"
	"github.com/stepgate/stepgate/internal/store"
)

// serverCommands are the commands that run the server or act on its
// database directly: serve, tokens, keys, audit.
func serverCommands(env Env) []*cobra.Command {
	return []*cobra.Command{newServeCmd(env), newTokensCmd(env), newUsersCmd(env), newKeysCmd(env), newAuditCmd(env), newSecretsCmd(env), newExecCmd(env), newBackupCmd(env)}
}

// dbFlags are the settings every server-side command shares.
type dbFlags struct {
	config        string
	database      string
	masterKeyFile string
	init          bool // an admin command may start a new database
}

// addDatabase adds the flags that name the configuration and database.
func (f *dbFlags) addDatabase(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "stepgate.yaml to read (default $"+config.EnvFile+")")
	fl.StringVar(&f.database, "database", "", "database: sqlite://PATH or postgres://... (default $"+config.EnvDatabase+", server.database, sqlite://./stepgate.db)")
	fl.StringVar(&f.masterKeyFile, "master-key-file", "", "file of the key that encrypts secrets at rest (default $"+config.EnvMasterKeyFile+", server.master_key_file)")
}

// add adds the flags of an admin command, which acts on the database of a
// server: addDatabase's, and --init.
func (f *dbFlags) add(cmd *cobra.Command) {
	f.addDatabase(cmd)
	cmd.Flags().BoolVar(&f.init, "init", false, "start a new database if the one named has never been used by stepgate serve (default: refuse, so that a mistyped --database does not create an empty one)")
}

// load reads the configuration: file, then environment, then flags.
func (f *dbFlags) load(env Env) (*config.Config, error) {
	cfg, err := loadConfig(env, f.config)
	if err != nil {
		return nil, err
	}
	cfg.ApplyEnv(env.Getenv)
	if f.database != "" {
		cfg.Server.Database = f.database
	}
	if f.masterKeyFile != "" {
		cfg.Server.MasterKeyFile = f.masterKeyFile
	}
	if err := cfg.Server.Validate(); err != nil {
		return nil, exit(ExitUsage, fmt.Errorf("%w: %w", config.ErrInvalid, err))
	}
	return cfg, nil
}

// openStore opens the configured database for an admin command.
func (f *dbFlags) openStore(ctx context.Context, env Env) (*config.Config, store.Store, error) {
	cfg, err := f.load(env)
	if err != nil {
		return nil, nil, err
	}
	dsn := cfg.Server.Database
	// A SQLite file that is not there is not created by a mistyped path.
	path, isFile := strings.CutPrefix(dsn, "sqlite://")
	if isFile && path != "" && !f.init {
		if _, err := os.Stat(resolve(env, path)); errors.Is(err, os.ErrNotExist) {
			return nil, nil, exit(ExitUsage, fmt.Errorf("database %s does not exist: check --database (or $%s, server.database), run stepgate serve on it first, or pass --init to start a new one", config.Redacted(dsn), config.EnvDatabase))
		}
	}
	st, err := app.OpenStore(ctx, dsn)
	if err != nil {
		return nil, nil, exit(ExitInternal, fmt.Errorf("opening %s: %w", config.Redacted(dsn), err))
	}
	if !f.init {
		// A database stepgate serve never ran on has no signing key.
		ks, err := st.ListSigningKeys(ctx)
		if err != nil {
			st.Close()
			return nil, nil, exit(ExitInternal, fmt.Errorf("reading %s: %w", config.Redacted(dsn), err))
		}
		if len(ks) == 0 {
			st.Close()
			return nil, nil, exit(ExitUsage, fmt.Errorf("database %s has never been used by stepgate serve (it has no signing key): check --database (or $%s, server.database), run stepgate serve on it first, or pass --init to use it as it is", config.Redacted(dsn), config.EnvDatabase))
		}
	}
	return cfg, st, nil
}

// withStore makes the RunE of an admin command: it opens the store the
// flags name, calls fn, and closes the store.
func (f *dbFlags) withStore(env Env, fn func(ctx context.Context, cfg *config.Config, st store.Store, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cfg, st, err := f.openStore(cmd.Context(), env)
		if err != nil {
			return err
		}
		defer st.Close()
		return fn(cmd.Context(), cfg, st, args)
	}
}

func newServeCmd(env Env) *cobra.Command {
	var (
		f          dbFlags
		listen     string
		publicURL  string
		dev        bool
		policyDirs []string
		logFormat  string
		pprofAddr  string
	)
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Run the stepgate server",
		Long: `Run the server that pipelines ask before a sensitive step: it assesses each
operation with the policy, answers allow (with a grant) or deny at once, or
holds a risky one until people approve it, and signs plan-bound grants.

It serves the JSON API under /v1/, /.well-known/openid-configuration and
/.well-known/jwks.json (to verify grants), /healthz, /readyz (checks the
database) and /metrics (Prometheus). Logs are JSON lines on standard error.

--dev makes a first run work with no configuration: it creates a master key
file (mode 0600) next to the database and the first signing key, and says
so. Without --dev the master key must exist (STEPGATE_MASTER_KEY_FILE).

It signs checkpoints of the audit log (at start, at every grant, every
minute while there are new events, at shutdown) with a key sealed under the
master key, and refuses to start on a log changed under its newest
checkpoint: see 'stepgate audit verify'.

Settings come from stepgate.yaml (server: section), then STEPGATE_*
variables, then flags. Several servers may share one PostgreSQL database.`,
		Example: `  stepgate serve --dev
  STEPGATE_DATABASE_URL=postgres://stepgate@db/stepgate STEPGATE_MASTER_KEY_FILE=/etc/stepgate/master.key \
    stepgate serve --listen 0.0.0.0:8080 --public-url https://stepgate.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load(env)
			if err != nil {
				return err
			}
			if listen != "" {
				cfg.Server.Listen = listen
			}
			if publicURL != "" {
				cfg.Server.PublicURL = publicURL
			}
			if err := cfg.Server.Validate(); err != nil {
				return exit(ExitUsage, err)
			}
			pc, err := cfg.PolicyConfig()
			if err != nil {
				return exit(ExitUsage, err)
			}
			mods, err := loadModules(env, append(slices.Clone(cfg.Server.PolicyDirs), policyDirs...))
			if err != nil {
				return err
			}
			hooks, err := app.Webhooks(cfg.Notifications.Webhooks, func(p string) string { return resolve(env, p) })
			if err != nil {
				return exit(ExitUsage, fmt.Errorf("%w: %w", config.ErrInvalid, err))
			}
			opts := &slog.HandlerOptions{ReplaceAttr: redactAttr}
			var handler slog.Handler = slog.NewJSONHandler(env.Stderr, opts)
			if logFormat == "text" {
				handler = slog.NewTextHandler(env.Stderr, opts)
			}
			handler = requestid.NewHandler(handler) // request_id on every line of a request
			log := slog.New(handler)
			if pprofAddr == "" {
				pprofAddr = env.Getenv(envPprof)
			}
			if pprofAddr != "" {
				stop, err := startPprof(cmd.Context(), pprofAddr, log)
				if err != nil {
					return exit(ExitUsage, err)
				}
				defer stop()
			}
			err = app.Serve(cmd.Context(), app.ServeOptions{
				Server: cfg.Server, Webhooks: hooks, Policy: pc, Modules: mods, MaxPlan: int64(cfg.Plan.MaxSize), Dev: dev,
				Log: log, Out: env.Stdout, Now: time.Now,
				SavedPlanBinding: cfg.Plan.SavedPlanBinding,
			})
			if err != nil {
				return exit(ExitInternal, err)
			}
			return nil
		},
	}
	f.addDatabase(cmd)
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "", "address to listen on (default $"+config.EnvListen+", server.listen, 127.0.0.1:8080)")
	fl.StringVar(&publicURL, "public-url", "", "URL people and pipelines reach the server at: the grants' issuer and the base of review links (default $"+config.EnvPublicURL+", server.public_url, http://LISTEN)")
	fl.BoolVar(&dev, "dev", false, "first-run mode: create a master key file and a signing key when missing")
	fl.StringArrayVar(&policyDirs, "policy", nil, "directory of your own .rego modules (repeatable; adds to server.policy_dirs)")
	fl.StringVar(&logFormat, "log-format", "json", "log format on standard error: json or text")
	fl.StringVar(&pprofAddr, "pprof-listen", "", "serve Go's runtime profiles (/debug/pprof/) on this loopback address, for measuring (default $"+envPprof+"; off)")
	return cmd
}

// redactAttr hides database passwords in every log line: in messages,
// string values and errors (a driver's error may quote its DSN).
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	switch v := a.Value.Resolve(); v.Kind() {
	case slog.KindString:
		if r := config.RedactSecrets(v.String()); r != v.String() {
			a.Value = slog.StringValue(r)
		}
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			a.Value = slog.StringValue(config.RedactSecrets(x.Error()))
		case fmt.Stringer:
			a.Value = slog.StringValue(config.RedactSecrets(x.String()))
		}
	}
	return a
}
