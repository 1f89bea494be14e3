package main

// The operator's corrections: packages revoke|adjust, cash adjust,
// accounts disable|enable, prices delete, and the audit log that records
// each of them (glm audit). Every correction needs --reason; the rules
// are the admin API's (platform/admin corrections.go), the messages speak
// in this command's flags.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/router"
	"github.com/glmkit/glmkit/platform/store"
)

// servingBound is what a correction made here tells the operator about
// serving processes: they see it within their key recheck or lease
// renewal, not at once (the admin API applies it at once on the process
// that answers).
const servingBound = "running servers apply it within 30 s (a revoked or shrunk package: at their next lease renewal; a disabled account: within 5 s)"

// cliActor names who made a correction from the command line.
func cliActor() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	return "cli:" + name
}

// correctionFlags are the flags every correction takes: --reason, kept in
// the audit log, and (where the command prints the entry) --json.
type correctionFlags struct {
	reason string
	asJSON bool
}

func (c *correctionFlags) register(cmd *cobra.Command, withJSON bool) {
	cmd.Flags().StringVar(&c.reason, "reason", "", "why (required; kept in the audit log)")
	if withJSON {
		cmd.Flags().BoolVar(&c.asJSON, "json", false, "print the audit entry as JSON")
	}
}

// correction checks --reason the way the admin API checks "reason".
func (c *correctionFlags) correction() (billing.Correction, error) {
	why, err := admin.Reason(c.reason)
	if err != nil {
		return billing.Correction{}, errors.New("--reason is required: say why the correction is made (it is kept in the audit log, glm audit)")
	}
	return billing.Correction{Actor: cliActor(), Reason: why}, nil
}

// print shows the audit entry a correction made.
func (c *correctionFlags) print(w io.Writer, e billing.AuditEntry, what string) error {
	if c.asJSON {
		return writeJSONOut(w, e)
	}
	fmt.Fprintf(w, "%s: %s → %s (audit %s)\n%s\n", what, e.Before, e.After, e.ID, servingBound)
	return nil
}

// flagErr turns a validator's message, which names API fields, into one
// that names this command's flags.
func flagErr(err error, fields ...string) error {
	err = validationErr(err)
	msg := err.Error()
	for _, f := range fields {
		msg = strings.ReplaceAll(msg, f+" ", "--"+f+" ")
	}
	return errors.New(msg)
}

func newPackagesRevokeCmd() *cobra.Command {
	var f storeFlags
	var cf correctionFlags
	cmd := &cobra.Command{
		Use:   "revoke PACKAGE",
		Short: "End a package now: its unspent tokens are taken away (recorded in the audit log)",
		Example: "  glm packages revoke pkg_3eeb0b77cb75ecffc9eb --reason 'granted by mistake: typo in --tokens'\n" +
			"  glm audit --limit 5",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := cf.correction()
			if err != nil {
				return err
			}
			return withBilling(ctx, &f, func(st *billing.Store) error {
				e, err := st.RevokePackage(ctx, args[0], c)
				if err != nil {
					return packageErr(args[0], err)
				}
				return cf.print(cmd.OutOrStdout(), e, "revoked "+args[0])
			})
		},
	}
	f.register(cmd)
	cf.register(cmd, true)
	return cmd
}

func newPackagesAdjustCmd() *cobra.Command {
	var f storeFlags
	var cf correctionFlags
	var tokens int64
	cmd := &cobra.Command{
		Use:   "adjust PACKAGE --tokens ±N",
		Short: "Shrink (negative --tokens) or grow a package (recorded in the audit log)",
		Example: "  glm packages adjust pkg_3eeb0b77cb75ecffc9eb --tokens -900000 --reason 'sold 100K, granted 1M'\n" +
			"  glm packages adjust pkg_3eeb0b77cb75ecffc9eb --tokens 5000 --reason 'compensation for an outage'",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var tp *int64
			if cmd.Flags().Changed("tokens") {
				tp = &tokens
			}
			delta, err := admin.PackageAdjustment(tp)
			if err != nil {
				return flagErr(err, "tokens")
			}
			c, err := cf.correction()
			if err != nil {
				return err
			}
			return withBilling(ctx, &f, func(st *billing.Store) error {
				e, err := st.AdjustPackage(ctx, args[0], delta, c)
				if err != nil {
					return packageErr(args[0], err)
				}
				return cf.print(cmd.OutOrStdout(), e, "adjusted "+args[0])
			})
		},
	}
	f.register(cmd)
	cmd.Flags().Int64Var(&tokens, "tokens", 0, "tokens to add (negative: to take away)")
	cf.register(cmd, true)
	return cmd
}

func packageErr(id string, err error) error {
	if errors.Is(err, billing.ErrNotFound) {
		return fmt.Errorf("no package %q (glm packages list)", id)
	}
	return validationErr(err)
}

func newCashCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cash", Short: "Correct an account's cash balance (glm topup adds cash)"}
	cmd.AddCommand(newCashAdjustCmd())
	return cmd
}

func newCashAdjustCmd() *cobra.Command {
	var f storeFlags
	var cf correctionFlags
	var account, cny string
	cmd := &cobra.Command{
		Use:   "adjust --account A --cny ±X --reason R",
		Short: "Add cash or take it away (negative --cny), with a reason kept in the audit log",
		Example: "  glm cash adjust --account acme --cny -45 --reason 'topped up 50 instead of 5'\n" +
			"  glm cash adjust --account acme --cny 10 --reason 'refund for request 2026…'",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			amount, err := admin.CashAdjustment(admin.CNY(cny))
			if err != nil {
				return flagErr(err, "cny")
			}
			c, err := cf.correction()
			if err != nil {
				return err
			}
			if err := checkAccount(ctx, &f, account, cmd.ErrOrStderr()); err != nil {
				return err
			}
			return withBilling(ctx, &f, func(st *billing.Store) error {
				e, err := st.AdjustCash(ctx, account, amount, c)
				if err != nil {
					return validationErr(err)
				}
				return cf.print(cmd.OutOrStdout(), e, fmt.Sprintf("cash of %s adjusted by ¥%s", account, amount))
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&account, "account", DefaultAccountID, "account id")
	cmd.Flags().StringVar(&cny, "cny", "", "yuan to add, up to 6 decimals; negative takes cash away")
	cf.register(cmd, true)
	return cmd
}

func newAccountsSwitchCmd(disable bool) *cobra.Command {
	var f storeFlags
	var cf correctionFlags
	use, short, ex := "enable ID", "Let a disabled account's keys work again", "  glm accounts enable acme --reason 'invoice paid'"
	if disable {
		use, short, ex = "disable ID", "Stop every key of an account (glm accounts enable undoes it)", "  glm accounts disable acme --reason 'leaked key, investigating'"
	}
	cmd := &cobra.Command{
		Use: use, Short: short, Example: ex,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := cf.correction()
			if err != nil {
				return err
			}
			return f.withStore(ctx, func(s *store.SQL) error {
				acct, err := s.GetAccount(ctx, args[0])
				if errors.Is(err, platform.ErrNotFound) {
					return fmt.Errorf("no account %q (glm accounts list)", args[0])
				}
				if err != nil {
					return err
				}
				return withBilling(ctx, &f, func(st *billing.Store) error {
					e, err := admin.SwitchAccount(ctx, s, st, acct, disable, c, time.Now())
					if err != nil {
						return err
					}
					return cf.print(cmd.OutOrStdout(), e, "account "+acct.ID)
				})
			})
		},
	}
	f.register(cmd)
	cf.register(cmd, true)
	return cmd
}

func newPricesDeleteCmd() *cobra.Command {
	var f storeFlags
	var cf correctionFlags
	cmd := &cobra.Command{
		Use:     "delete MODEL",
		Short:   "Delete a model's price row (the model is then charged at the '*' row, else free)",
		Example: "  glm prices delete nosuchmodel --reason 'typo in glm prices set'",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := cf.correction()
			if err != nil {
				return err
			}
			return withBilling(ctx, &f, func(st *billing.Store) error {
				e, found, err := st.DeletePrice(ctx, args[0], c)
				if err != nil {
					return err
				}
				if !found {
					return fmt.Errorf("no price row for model %q (glm prices list)", args[0])
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted the price of %s (was %s; audit %s)\nrunning servers charge without it within 30 s (their price refresh)\n", args[0], e.Before, e.ID)
				return nil
			})
		},
	}
	f.register(cmd)
	cf.register(cmd, false)
	return cmd
}

func newAuditCmd() *cobra.Command {
	var f storeFlags
	var account string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log of corrections: who, what, when, before and after, why (newest first)",
		Example: "  glm audit\n" +
			"  glm audit --account acme --limit 10 --json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if limit < 0 {
				return errors.New("--limit must be 0 (all) or more")
			}
			return withBilling(ctx, &f, func(st *billing.Store) error {
				es, err := st.AuditLog(ctx, account, limit)
				if err != nil {
					return err
				}
				if es == nil {
					es = []billing.AuditEntry{}
				}
				return printList(cmd.OutOrStdout(), asJSON, es, "WHEN (Beijing)\tWHO\tACTION\tACCOUNT\tSUBJECT\tBEFORE\tAFTER\tREASON", func(tw io.Writer) {
					for _, e := range es {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cst(e.At), e.Actor, e.Action, e.AccountID, e.Subject, e.Before, e.After, e.Reason)
					}
				})
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&account, "account", "", "only this account's entries")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many entries (0: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// servedModels is what the model checks of prices set and packages grant
// accept from the command line: the models of the backends in --config
// when given, else the Zhipu cloud's catalogue and the built-in embedding
// model (what glm serve serves with the ZHIPUAI_API_KEY shortcut).
func servedModels(ctx context.Context, config string) (func(string) bool, error) {
	if config == "" {
		return func(name string) bool {
			_, ok := platform.LookupZhipuModel(name)
			return ok || name == platform.BuiltinEmbedModel
		}, nil
	}
	cfg, err := router.LoadConfig(config)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	r, err := router.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	return func(name string) bool { _, ok := r.Model(name); return ok }, nil
}

// checkModels refuses model names no backend serves, unless --force;
// what names the input in the message (a flag, or an argument).
func checkModels(ctx context.Context, config string, force bool, what string, names []string) error {
	if force {
		return nil
	}
	known, err := servedModels(ctx, config)
	if err != nil {
		return err
	}
	if err := admin.Models(what, names, known, false); err != nil {
		msg := validationErr(err).Error()
		msg = strings.Replace(msg, "or force it", "or pass --force", 1)
		return errors.New(msg + " (models served: the backends of --config, else the Zhipu catalogue)")
	}
	return nil
}
