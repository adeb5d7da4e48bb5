package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/account"
	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
)

func newUsersCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage the people who approve checks",
		Long: `Manage local accounts, acting on the configured database directly. A new
user gets a one-time enrollment link (valid 24 h) to register a passkey or
TOTP. By default approvers are admins and members of the group "approvers";
a policy can require other groups.`,
	}
	cmd.AddCommand(newUsersAddCmd(env), newUsersListCmd(env), newUsersDisableCmd(env, true), newUsersDisableCmd(env, false),
		newUsersGroupsCmd(env), newUsersLinkCmd(env), newUsersEnrollCmd(env))
	return cmd
}

// enrollURL is where a person uses an enrollment secret: on the public URL
// configured (--public-url of serve is not known here: server.public_url,
// $STEPGATE_PUBLIC_URL), else the one the server recorded when it last
// started, else the default for the configured listen address.
func enrollURL(ctx context.Context, cfg *config.Config, st store.Store, secret string) string {
	base := app.PublicURL(cfg.Server)
	if cfg.Server.PublicURL == "" {
		if u, err := st.Setting(ctx, store.SettingPublicURL); err == nil && u != "" {
			base = u
		}
	}
	return strings.TrimRight(base, "/") + "/enroll/" + secret
}

func accountErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, account.ErrInvalid), errors.Is(err, account.ErrNotFound), errors.Is(err, account.ErrTaken):
		return exit(ExitUsage, err)
	}
	return exit(ExitInternal, err)
}

func newUsersAddCmd(env Env) *cobra.Command {
	var (
		f      dbFlags
		email  string
		groups []string
		admin  bool
	)
	cmd := &cobra.Command{
		Use:   "add NAME [--email E] [--group G]... [--admin]",
		Short: "Create an account and print its one-time enrollment link",
		Long: `Create a local account and print its enrollment link on standard output,
alone on one line. The link works once, for 24 hours: the person opens it and
registers a passkey or a TOTP app. Set the server's public URL (--public-url,
STEPGATE_PUBLIC_URL or server.public_url) so that the link points at it.`,
		Example: `  stepgate users add alice --email alice@example.com --group approvers
  stepgate users add root --admin`,
		Args: cobra.ExactArgs(1),
		RunE: f.withStore(env, func(ctx context.Context, cfg *config.Config, st store.Store, args []string) error {
			u, secret, err := account.New(st, time.Now).Create(ctx, args[0], email, groups, admin, adminActor(env))
			if err != nil {
				return accountErr(err)
			}
			fmt.Fprintln(env.Stdout, enrollURL(ctx, cfg, st, secret))
			fmt.Fprintf(env.Stderr, "created user %s; the enrollment link above works once, until %s\n", u.Name, time.Now().Add(account.EnrollmentTTL).Format(time.RFC3339))
			return nil
		}),
	}
	f.add(cmd)
	cmd.Flags().StringVar(&email, "email", "", "the person's email address")
	cmd.Flags().StringArrayVar(&groups, "group", nil, "a group the person is in (repeatable); approvers may approve by default")
	cmd.Flags().BoolVar(&admin, "admin", false, "make the person an admin (admins may approve by default)")
	return cmd
}

func newUsersEnrollCmd(env Env) *cobra.Command {
	var f dbFlags
	cmd := &cobra.Command{
		Use:   "enroll NAME",
		Short: "Print a new one-time enrollment link for an existing account",
		Args:  cobra.ExactArgs(1),
		RunE: f.withStore(env, func(ctx context.Context, cfg *config.Config, st store.Store, args []string) error {
			secret, err := account.New(st, time.Now).Enroll(ctx, args[0], adminActor(env))
			if err != nil {
				return accountErr(err)
			}
			fmt.Fprintln(env.Stdout, enrollURL(ctx, cfg, st, secret))
			return nil
		}),
	}
	f.add(cmd)
	return cmd
}

func newUsersListCmd(env Env) *cobra.Command {
	var (
		f      dbFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List accounts with their groups and factors",
		Args:  cobra.NoArgs,
		RunE: f.withStore(env, func(ctx context.Context, _ *config.Config, st store.Store, _ []string) error {
			us, err := st.ListUsers(ctx)
			if err != nil {
				return exit(ExitInternal, err)
			}
			type row struct {
				Name     string    `json:"name"`
				Email    string    `json:"email,omitempty"`
				Groups   []string  `json:"groups"`
				Admin    bool      `json:"admin"`
				Links    []string  `json:"links,omitempty"`
				Factors  []string  `json:"factors"`
				Disabled bool      `json:"disabled"`
				Created  time.Time `json:"created_at"`
			}
			rows := []row{}
			for _, u := range us {
				creds, err := st.ListCredentials(ctx, u.ID)
				if err != nil {
					return exit(ExitInternal, err)
				}
				r := row{Name: u.Name, Email: u.Email, Groups: u.Groups, Admin: u.Admin, Links: u.Links, Factors: []string{}, Disabled: !u.DisabledAt.IsZero(), Created: u.CreatedAt}
				for _, c := range creds {
					r.Factors = append(r.Factors, string(c.Kind))
				}
				rows = append(rows, r)
			}
			if output == "json" {
				return json.NewEncoder(env.Stdout).Encode(rows)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tGROUPS\tADMIN\tFACTORS\tLINKS\tSTATUS")
			for _, r := range rows {
				status := "active"
				if r.Disabled {
					status = "disabled"
				}
				fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", r.Name, orDash(strings.Join(r.Groups, ",")), r.Admin, orDash(strings.Join(r.Factors, ",")), orDash(strings.Join(r.Links, ",")), status)
			}
			return tw.Flush()
		}),
	}
	f.add(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newUsersDisableCmd(env Env, disable bool) *cobra.Command {
	var f dbFlags
	use, short := "disable NAME", "Disable an account and sign it out everywhere"
	if !disable {
		use, short = "enable NAME", "Enable a disabled account again"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: f.withStore(env, func(ctx context.Context, _ *config.Config, st store.Store, args []string) error {
			return accountErr(account.New(st, time.Now).SetDisabled(ctx, args[0], disable, adminActor(env)))
		}),
	}
	f.add(cmd)
	return cmd
}

func newUsersGroupsCmd(env Env) *cobra.Command {
	var (
		f      dbFlags
		groups []string
		admin  bool
	)
	cmd := &cobra.Command{
		Use:     "groups NAME [--group G]... [--admin]",
		Short:   "Set an account's groups and admin flag (replacing them)",
		Example: `  stepgate users groups alice --group approvers --group security`,
		Args:    cobra.ExactArgs(1),
		RunE: f.withStore(env, func(ctx context.Context, _ *config.Config, st store.Store, args []string) error {
			u, err := account.New(st, time.Now).SetGroups(ctx, args[0], groups, admin, adminActor(env))
			if err != nil {
				return accountErr(err)
			}
			fmt.Fprintf(env.Stderr, "%s: groups %s, admin %v\n", u.Name, orDash(strings.Join(u.Groups, ",")), u.Admin)
			return nil
		}),
	}
	f.add(cmd)
	cmd.Flags().StringArrayVar(&groups, "group", nil, "a group (repeatable); none clears them")
	cmd.Flags().BoolVar(&admin, "admin", false, "make the person an admin")
	return cmd
}

func newUsersLinkCmd(env Env) *cobra.Command {
	var (
		f      dbFlags
		remove bool
	)
	cmd := &cobra.Command{
		Use:   "link NAME IDENTITY",
		Short: "Tie a pipeline identity (github:alice) to an account",
		Long: `Tie a pipeline identity to an account: a check run by that identity (the
GitHub Actions or GitLab CI actor) has the person as its requester, and the
requester can never approve their own check where others must approve.`,
		Example: `  stepgate users link alice github:alice
  stepgate users link alice gitlab:alice.smith
  stepgate users link alice github:alice --remove`,
		Args: cobra.ExactArgs(2),
		RunE: f.withStore(env, func(ctx context.Context, _ *config.Config, st store.Store, args []string) error {
			_, err := account.New(st, time.Now).Link(ctx, args[0], args[1], remove, adminActor(env))
			return accountErr(err)
		}),
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&remove, "remove", false, "remove the link instead")
	return cmd
}
