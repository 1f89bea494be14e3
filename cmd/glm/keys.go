package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/auth"
	"github.com/glmkit/glmkit/platform/store"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke the API keys of glm serve",
		Long: "Manage API keys in glm serve's database (the same --db / --data-dir as glm serve;\n" +
			"safe to run while the server runs). A key is shown in full once, at creation.",
	}
	cmd.AddCommand(newKeysCreateCmd(), newKeysListCmd(), newKeysRevokeCmd())
	return cmd
}

// The --json form of a key is admin.Key, the admin API's answer.

func newKeysCreateCmd() *cobra.Command {
	var sf storeFlags
	var name, account string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an API key and print it once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return sf.withStore(ctx, func(s *store.SQL) error {
				if account == "" {
					account = DefaultAccountID
					if _, err := ensureDefaultAccount(ctx, s); err != nil {
						return err
					}
				}
				k, err := newKey(ctx, s, account, name)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if asJSON {
					return writeJSONOut(out, admin.KeyView(k, true))
				}
				fmt.Fprintf(out, "Created API key %s (account %s). It is shown only this once:\n\n    %s\n\n", k.ID, k.AccountID, k.Full())
				return nil
			})
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "a name to recognise the key by")
	cmd.Flags().StringVar(&account, "account", "", "account id (default: the default account)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: {id, key, masked, name, account_id, created_at, …}")
	return cmd
}

func newKeysListCmd() *cobra.Command {
	var sf storeFlags
	var account string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List API keys, masked, with created and last-used times",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return sf.withStore(ctx, func(s *store.SQL) error {
				keys, err := s.ListKeysMasked(ctx, account)
				if err != nil {
					return err
				}
				return printList(cmd.OutOrStdout(), asJSON, admin.KeyViews(keys),
					"ID\tKEY\tNAME\tACCOUNT\tCREATED\tLAST USED\tSTATUS", func(tw io.Writer) {
						for _, k := range keys {
							used, status := "never", "active"
							if !k.LastUsedAt.IsZero() {
								used = showTime(k.LastUsedAt)
							}
							if k.Revoked() {
								status = "revoked " + showTime(k.RevokedAt)
							}
							fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Masked(), k.Name, k.AccountID,
								showTime(k.CreatedAt), used, status)
						}
					})
			})
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&account, "account", "", "only this account's keys")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newKeysRevokeCmd() *cobra.Command {
	var sf storeFlags
	var account string
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if !platform.ValidKeyID(id) {
				return fmt.Errorf("%q is not a key id (32 hex characters, the part before the dot; see glm keys list)", id)
			}
			ctx := cmd.Context()
			return sf.withStore(ctx, func(s *store.SQL) error {
				if account != "" {
					// Keys are managed per account: refuse a key id of
					// another account (a pasted id from the wrong list).
					k, err := s.GetKey(ctx, id)
					if err == nil && k.AccountID != account {
						err = platform.ErrNotFound
					}
					if errors.Is(err, platform.ErrNotFound) {
						return fmt.Errorf("account %s has no key with id %s", account, id)
					}
					if err != nil {
						return err
					}
				}
				if err := s.RevokeKey(ctx, id, time.Now()); err != nil {
					if errors.Is(err, platform.ErrNotFound) {
						return fmt.Errorf("no key with id %s", id)
					}
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Revoked key %s. A running glm serve on this database refuses it within %s (its --key-recheck; DELETE /admin/v1/accounts/ACCOUNT/keys/ID: at once on the serving process).\n",
					id, auth.DefaultRecheck)
				return nil
			})
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&account, "account", "", "only revoke the key if it belongs to this account")
	return cmd
}
