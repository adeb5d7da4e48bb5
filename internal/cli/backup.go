package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
)

// backuper is a store that copies itself online (SQLite).
type backuper interface {
	Backup(ctx context.Context, path string) error
}

func newBackupCmd(env Env) *cobra.Command {
	var (
		f  dbFlags
		to string
	)
	cmd := &cobra.Command{
		Use:   "backup --to FILE",
		Short: "Copy the SQLite database, consistently, while the server runs",
		Long: `Write a consistent copy of the SQLite database to FILE while stepgate serve
keeps running (SQLite's VACUUM INTO: the database at one instant). FILE must
not exist; it is created readable by its owner only. To restore, stop the
server and put FILE in place of the database (removing its -wal and -shm).

The master key is not in the database: back it up separately, and keep the
two apart. A PostgreSQL database is backed up with pg_dump (see
docs/operations.md).`,
		Example: `  stepgate backup --database sqlite:///var/lib/stepgate/stepgate.db --to /var/backups/stepgate-$(date +%F).db`,
		Args:    cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if to == "" {
				return exit(ExitUsage, errors.New("--to FILE is required"))
			}
			cfg, err := f.load(env)
			if err != nil {
				return err
			}
			if !strings.HasPrefix(cfg.Server.Database, "sqlite://") {
				return exit(ExitUsage, fmt.Errorf("%s is not a SQLite database: back PostgreSQL up with pg_dump (docs/operations.md)", config.Redacted(cfg.Server.Database)))
			}
			return nil
		},
		RunE: f.withStore(env, func(ctx context.Context, cfg *config.Config, st store.Store, _ []string) error {
			b, ok := st.(backuper)
			if !ok {
				return exit(ExitUsage, fmt.Errorf("%s is not a SQLite database: back PostgreSQL up with pg_dump (docs/operations.md)", config.Redacted(cfg.Server.Database)))
			}
			if err := b.Backup(ctx, resolve(env, to)); err != nil {
				return exit(ExitInternal, err)
			}
			fmt.Fprintf(env.Stdout, "backed up %s to %s\n", config.Redacted(cfg.Server.Database), to)
			return nil
		}),
	}
	f.add(cmd)
	cmd.Flags().StringVar(&to, "to", "", "file to write the copy to (must not exist)")
	return cmd
}
