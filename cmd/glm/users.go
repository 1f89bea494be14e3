package main

// glm users: the people who sign in to the console (docs/console.md §2).
// The validators and operations are admin's, shared with the admin API.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/store"
)

func newUsersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Create, list and disable the console's users and set their passwords",
		Long: "Users sign in to the console of glm serve: an owner or member acts for one account, an admin\n" +
			"is an operator. Passwords are read from stdin (--password-stdin), never from a flag.",
	}
	cmd.AddCommand(newUsersCreateCmd(), newUsersListCmd(), newUsersDisableCmd(), newUsersPasswdCmd())
	return cmd
}

// readPassword reads the password: the first line of stdin.
func readPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	if !fromStdin {
		return "", errors.New("--password-stdin is required: pipe the password in (printf '%s' \"$PW\" | glm users …)")
	}
	line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), admin.MaxPassword+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("--password-stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// userFlagError says a validator's message in the command's own words:
// the e-mail is the EMAIL argument, the password came on stdin.
func userFlagError(err error) error {
	pe := platform.AsError(err)
	if pe.Code == platform.CodeInternal {
		return err
	}
	m := pe.Message
	switch {
	case strings.HasSuffix(m, "needs an account"):
		m = "--" + strings.TrimSuffix(m, "an account") + "--account"
	case m == "role admin has no account":
		m = "--role admin takes no --account"
	case strings.HasPrefix(m, "email"):
		m = "EMAIL" + strings.TrimPrefix(m, "email")
	case strings.HasPrefix(m, "password:"):
		m = "the password on stdin" + strings.TrimPrefix(m, "password")
	case strings.HasPrefix(m, "role "), strings.HasPrefix(m, "account "):
		m = "--" + m
	}
	return errors.New(m)
}

func newUsersCreateCmd() *cobra.Command {
	var sf storeFlags
	var account, role string
	var fromStdin, asJSON bool
	cmd := &cobra.Command{
		Use:   "create EMAIL",
		Short: "Create a console user (password on stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd, fromStdin)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			return sf.withStore(ctx, func(s *store.SQL) error {
				u, err := admin.CreateUser(ctx, s, s, admin.NewUser{Email: args[0], AccountID: account, Role: role, Password: pw}, time.Now())
				if err != nil {
					return userFlagError(err)
				}
				if asJSON {
					return writeJSONOut(cmd.OutOrStdout(), admin.UserView(u))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Created user %s (role %s%s)\n", u.Email, u.Role, accountNote(u.AccountID))
				return nil
			})
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&account, "account", "", "the account an owner or member acts for")
	cmd.Flags().StringVar(&role, "role", platform.RoleOwner, "owner, member or admin (an operator, no --account)")
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from stdin (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func accountNote(id string) string {
	if id == "" {
		return ""
	}
	return ", account " + id
}

func newUsersListCmd() *cobra.Command {
	var sf storeFlags
	var account string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List console users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return sf.withStore(ctx, func(s *store.SQL) error {
				us, err := s.ListUsers(ctx, account)
				if err != nil {
					return err
				}
				return printList(cmd.OutOrStdout(), asJSON, admin.UserViews(us), "EMAIL\tROLE\tACCOUNT\tCREATED\tDISABLED", func(tw io.Writer) {
					for _, u := range us {
						disabled := "-"
						if u.Disabled() {
							disabled = cst(u.DisabledAt)
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Email, u.Role, orDash(u.AccountID), cst(u.CreatedAt), disabled)
					}
				})
			})
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&account, "account", "", "only this account's users")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newUsersDisableCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "disable EMAIL",
		Short: "Disable a user: it can no longer sign in, and its sessions end at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return sf.withStore(ctx, func(s *store.SQL) error {
				u, err := admin.DisableUser(ctx, s, args[0], time.Now())
				if err != nil {
					return userFlagError(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Disabled user %s; its sessions have ended\n", u.Email)
				return nil
			})
		},
	}
	sf.register(cmd)
	return cmd
}

func newUsersPasswdCmd() *cobra.Command {
	var sf storeFlags
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "passwd EMAIL",
		Short: "Set a user's password (on stdin); the user's sessions end",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd, fromStdin)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			return sf.withStore(ctx, func(s *store.SQL) error {
				u, err := admin.ChangePassword(ctx, s, args[0], pw, "", time.Now())
				if err != nil {
					return userFlagError(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Set the password of %s; its sessions have ended\n", u.Email)
				return nil
			})
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from stdin (required)")
	return cmd
}
