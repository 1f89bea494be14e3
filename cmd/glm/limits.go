package main

// glm limits: limit rules per account and per key in the
// database (billing_limit_rules), on the same --db as glm serve. Running
// servers pick a change up within their --limits-reload interval (5 s);
// the admin API applies it at once on the server that handled the call.
// Rules set here override the --limits file's rule for the same subject.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/billing"
)

func newLimitsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "limits",
		Short: "Set, list and clear limits per account or key (1302 concurrency, 1303 rpm, 1304 daily tokens)",
		Long: "Limits are off unless set. Rules live in the database; running servers reload them every\n" +
			"--limits-reload (5s). A rule here replaces the --limits file's rule for the same account or key.",
	}
	cmd.AddCommand(newLimitsSetCmd(), newLimitsListCmd(), newLimitsClearCmd())
	return cmd
}

// limitTarget is --account A | --key K.
type limitTarget struct{ account, key string }

func (lt *limitTarget) register(fs *pflag.FlagSet) {
	fs.StringVar(&lt.account, "account", "", "the account the rule is for")
	fs.StringVar(&lt.key, "key", "", "the key id the rule is for (glm keys list)")
}

func (lt limitTarget) subject() (subject, id string, err error) {
	switch {
	case (lt.account == "") == (lt.key == ""):
		return "", "", errors.New("give --account or --key (one of them)")
	case lt.account != "":
		subject, id = billing.LimitAccount, lt.account
	default:
		subject, id = billing.LimitKey, lt.key
	}
	if err := admin.ValidLimitSubject(subject, id); err != nil {
		return "", "", errors.New(platform.AsError(err).Message)
	}
	return subject, id, nil
}

// checkLimitSubject refuses a rule for an account or key the platform does
// not know (skipped with a warning when the store cannot open the
// database, like checkAccount).
func checkLimitSubject(ctx context.Context, f *storeFlags, subject, id string, stderr io.Writer) error {
	if subject == billing.LimitAccount {
		return checkAccount(ctx, f, id, stderr)
	}
	s, err := f.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "warning: key %q not checked: %v\n", id, err)
		return nil
	}
	defer s.Close()
	if _, err := s.GetKey(ctx, id); err != nil {
		if errors.Is(err, platform.ErrNotFound) {
			return fmt.Errorf("no key %q (glm keys list)", id)
		}
		return err
	}
	return nil
}

// validation errors print the shared validator's message.
func validationErr(err error) error {
	var pe *platform.Error
	if errors.As(err, &pe) {
		return errors.New(pe.Message)
	}
	return err
}

// limitFlagNames pairs the admin API's field names of a limit with the
// flags glm limits set takes for them: a CLI error speaks in flags.
func limitFlagNames() []string {
	return []string{"max_concurrent", "--concurrency", "daily_tokens", "--daily-tokens", "rpm", "--rpm"}
}

// inFlags rewrites the API field names in a validator's message as the
// command's flags.
func inFlags(err error, names []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	// One pass, so a replaced name is never replaced again.
	return errors.New(strings.NewReplacer(names...).Replace(msg))
}

func limitValue(s int64) string {
	if s == 0 {
		return "-"
	}
	return fmt.Sprint(s)
}

func newLimitsSetCmd() *cobra.Command {
	var f storeFlags
	var lt limitTarget
	var conc, rpm, daily int64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "set --account A | --key K [--concurrency N] [--rpm N] [--daily-tokens N]",
		Short: "Set limits (flags left out keep their value; 0 turns a limit off)",
		Example: "  glm limits set --key 0123456789abcdef0123456789abcdef --rpm 60 --concurrency 4\n" +
			"  glm limits set --account acme --daily-tokens 1000000",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			subject, id, err := lt.subject()
			if err != nil {
				return err
			}
			var v admin.LimitValues
			if cmd.Flags().Changed("concurrency") {
				v.MaxConcurrent = &conc
			}
			if cmd.Flags().Changed("rpm") {
				v.RPM = &rpm
			}
			if cmd.Flags().Changed("daily-tokens") {
				v.DailyTokens = &daily
			}
			patch, err := admin.Limit(subject, id, v)
			if err != nil {
				return inFlags(validationErr(err), limitFlagNames())
			}
			if err := checkLimitSubject(ctx, &f, subject, id, cmd.ErrOrStderr()); err != nil {
				return err
			}
			return withBilling(ctx, &f, func(st *billing.Store) error {
				r, err := st.SetLimit(ctx, subject, id, patch)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSONOut(cmd.OutOrStdout(), admin.LimitView(r))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s: concurrency %s, rpm %s, daily tokens %s (running servers apply it within their --limits-reload)\n",
					r.Subject, r.ID, limitValue(r.MaxConcurrent), limitValue(r.RPM), limitValue(r.DailyTokens))
				return nil
			})
		},
	}
	f.register(cmd)
	lt.register(cmd.Flags())
	cmd.Flags().Int64Var(&conc, "concurrency", 0, "requests in flight (1302); 0 = off")
	cmd.Flags().Int64Var(&rpm, "rpm", 0, "requests per minute (1303); 0 = off")
	cmd.Flags().Int64Var(&daily, "daily-tokens", 0, "tokens per day, Beijing time (1304); 0 = off")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newLimitsListCmd() *cobra.Command {
	var f storeFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the limit rules in the database (the --limits file of a server is not shown)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return withBilling(ctx, &f, func(st *billing.Store) error {
				rs, err := st.ListLimits(ctx)
				if err != nil {
					return err
				}
				return printList(cmd.OutOrStdout(), asJSON, admin.LimitViews(rs), "SUBJECT\tID\tCONCURRENCY\tRPM\tDAILY TOKENS\tUPDATED", func(tw io.Writer) {
					for _, r := range rs {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Subject, r.ID, limitValue(r.MaxConcurrent), limitValue(r.RPM), limitValue(r.DailyTokens), cst(r.UpdatedAt))
					}
				})
			})
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newLimitsClearCmd() *cobra.Command {
	var f storeFlags
	var lt limitTarget
	cmd := &cobra.Command{
		Use:   "clear --account A | --key K",
		Short: "Delete a rule (the subject falls back to the --limits file's rule, if any)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			subject, id, err := lt.subject()
			if err != nil {
				return err
			}
			return withBilling(ctx, &f, func(st *billing.Store) error {
				found, err := st.ClearLimit(ctx, subject, id)
				if err != nil {
					return err
				}
				if !found {
					return fmt.Errorf("%s %s has no limit rule (glm limits list)", subject, id)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "cleared the limits of %s %s\n", subject, id)
				return nil
			})
		},
	}
	f.register(cmd)
	lt.register(cmd.Flags())
	return cmd
}
