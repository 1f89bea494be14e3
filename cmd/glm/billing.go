package main

// The metering commands: packages, top-ups, usage, bills,
// prices — and accounts, which the server commands do not provide yet. All
// work on the same --db / --data-dir as glm serve and are safe to run while
// it runs: money changes go through billing's transactions, and a running
// server picks up prices within its refresh interval.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
)

// openBilling opens billing's tables on the command's database.
func openBilling(ctx context.Context, f *storeFlags) (*billing.Store, func(), error) {
	dsn, err := f.existing()
	if err != nil {
		return nil, nil, err
	}
	db, err := store.OpenDB(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	return billing.NewStore(ledger.New(db), nil), func() { db.Close() }, nil
}

// withBilling runs fn on billing's tables of the command's database and
// closes them afterwards.
func withBilling(ctx context.Context, f *storeFlags, fn func(st *billing.Store) error) error {
	st, done, err := openBilling(ctx, f)
	if err != nil {
		return err
	}
	defer done()
	return fn(st)
}

// checkAccount refuses money for an account the platform does not know (a
// typo would otherwise strand a package). When the platform store cannot
// open this database (a store without the PostgreSQL dialect yet), the
// check is skipped with a warning rather than blocking the operator.
func checkAccount(ctx context.Context, f *storeFlags, id string, stderr io.Writer) error {
	s, err := f.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "warning: account %q not checked: %v\n", id, err)
		return nil
	}
	defer s.Close()
	if _, err := s.GetAccount(ctx, id); err != nil {
		if errors.Is(err, platform.ErrNotFound) {
			return fmt.Errorf("no account %q (glm accounts list)", id)
		}
		return err
	}
	return nil
}

// cst prints a time the way every command does (clock.go: one zone,
// labelled with its offset).
func cst(t time.Time) string { return showTime(t) }

func newPackagesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "packages", Short: "Grant, list, revoke and adjust resource packages (资源包)"}
	cmd.AddCommand(newPackagesGrantCmd(), newPackagesListCmd(), newPackagesRevokeCmd(), newPackagesAdjustCmd())
	return cmd
}

// The --json forms of packages and usage rows are admin.Package and
// admin.Usage, the admin API's answers.

func newPackagesGrantCmd() *cobra.Command {
	var f storeFlags
	var account, name, kind, models, effective, expires, config string
	var tokens int64
	var days int
	var asJSON, force bool
	cmd := &cobra.Command{
		Use:   "grant",
		Short: "Give an account a package of tokens",
		Example: "  glm packages grant --account default --tokens 100000000 --days 90 --name '1亿tokens资源包（三个月总额）'\n" +
			"  glm packages grant --account default --tokens 1000000 --days 30 --models glm-4,glm-4v --type purchased\n" +
			"  glm packages grant --account default --tokens 1000000 --expires 2027-01-01",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			// The admin API's validator (platform/admin): same rules, same
			// messages.
			in := admin.GrantInput{AccountID: account, Name: name, Type: kind, EffectiveAt: effective, ExpiresAt: expires}
			if cmd.Flags().Changed("tokens") {
				in.Tokens = &tokens
			}
			if cmd.Flags().Changed("days") {
				in.Days = &days
			}
			if cmd.Flags().Changed("models") {
				in.Models = strings.Split(models, ",")
			}
			now := time.Now()
			g, err := in.Grant(now)
			if err != nil {
				return validationErr(err)
			}
			if err := checkModels(ctx, config, force, "--models", g.Models); err != nil {
				return err
			}
			if err := checkAccount(ctx, &f, account, cmd.ErrOrStderr()); err != nil {
				return err
			}
			return withBilling(ctx, &f, func(st *billing.Store) error {
				p, err := st.GrantPackage(ctx, g)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSONOut(cmd.OutOrStdout(), admin.PackageView(p, now))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "granted %s: %d tokens to %s, %s, effective %s, expires %s\n",
					p.ID, p.TokensGranted, p.AccountID, p.Status(now), cst(p.EffectiveAt), cst(p.ExpiresAt))
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&account, "account", DefaultAccountID, "account id")
	cmd.Flags().Int64Var(&tokens, "tokens", 0, "tokens granted")
	cmd.Flags().IntVar(&days, "days", 0, "validity in days from the effective time")
	cmd.Flags().StringVar(&models, "models", "", "comma-separated model scope (default: all models)")
	cmd.Flags().StringVar(&name, "name", "", "package name")
	cmd.Flags().StringVar(&kind, "type", billing.KindGift, "gift or purchased")
	cmd.Flags().StringVar(&effective, "effective", "", "effective time (default now), Beijing time")
	cmd.Flags().StringVar(&expires, "expires", "", "expiry time instead of --days, Beijing time")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	modelCheckFlags(cmd, &config, &force)
	return cmd
}

func newPackagesListCmd() *cobra.Command {
	var f storeFlags
	var account string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List packages, earliest expiry first (the order they pay in)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return withBilling(ctx, &f, func(st *billing.Store) error {
				ps, err := st.ListPackages(ctx, account)
				if err != nil {
					return err
				}
				now := time.Now()
				return printList(cmd.OutOrStdout(), asJSON, admin.PackageViews(ps, now),
					"ID\tACCOUNT\tNAME\tTYPE\tSTATUS\tREMAINING\tGRANTED\tMODELS\tPURCHASED\tEFFECTIVE\tEXPIRES", func(tw io.Writer) {
						for _, p := range ps {
							scope := strings.Join(p.Models, ",")
							if scope == "" {
								scope = "all"
							}
							fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", p.ID, p.AccountID, p.Name, p.Kind, p.Status(now),
								p.TokensRemaining, p.TokensGranted, scope, cst(p.PurchasedAt), cst(p.EffectiveAt), cst(p.ExpiresAt))
						}
					})
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&account, "account", "", "only this account")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newTopupCmd() *cobra.Command {
	var f storeFlags
	var account, cny, note string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "topup",
		Short:   "Add cash (CNY) to an account's balance",
		Example: "  glm topup --account default --cny 50",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			amount, err := admin.TopUp(admin.CNY(cny), note)
			if err != nil {
				return validationErr(err)
			}
			if err := checkAccount(ctx, &f, account, cmd.ErrOrStderr()); err != nil {
				return err
			}
			return withBilling(ctx, &f, func(st *billing.Store) error {
				bal, err := st.TopUp(ctx, account, amount, note)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSONOut(cmd.OutOrStdout(), map[string]any{"account_id": account, "added_micros": amount, "balance_micros": bal, "balance_cny": bal.String()})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "added ¥%s to %s; balance ¥%s\n", amount, account, bal)
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&account, "account", DefaultAccountID, "account id")
	cmd.Flags().StringVar(&cny, "cny", "", "amount in yuan, up to 6 decimals (e.g. 50 or 0.5)")
	cmd.Flags().StringVar(&note, "note", "", "note kept with the credit")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newUsageCmd() *cobra.Command {
	var f storeFlags
	var account, since, model string
	var limit int
	var asJSON, daily bool
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "List usage rows: what each request used, cost, and what paid for it",
		Long: "Rows older than glm serve's --retention are rolled up per day and no longer listed one\n" +
			"by one; --daily shows every day, rolled up or not, per account, key, model and outcome.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if limit < 0 {
				return fmt.Errorf("--limit must not be negative, got %d", limit)
			}
			uf := billing.UsageFilter{AccountID: account, Model: model, Limit: limit, Newest: true, WithParts: asJSON}
			if since != "" {
				t, err := parseWhen("--since", since)
				if err != nil {
					return err
				}
				uf.Since = t
			}
			if daily {
				if limit != 0 {
					return errors.New("--limit lists rows; with --daily every day is shown")
				}
				return withBilling(ctx, &f, func(st *billing.Store) error { return printDailyUsage(cmd, st, uf, asJSON) })
			}
			return withBilling(ctx, &f, func(st *billing.Store) error {
				rows, err := st.ListUsage(ctx, uf)
				if err != nil {
					return err
				}
				return printList(cmd.OutOrStdout(), asJSON, admin.UsageViews(rows),
					"TIME\tREQUEST\tACCOUNT\tMODEL\tPROMPT\tCACHED\tCOMPLETION\tREASONING\tCLASS\tOUTCOME\tAMOUNT\tPACKAGES\tCASH\tUNPAID", func(tw io.Writer) {
						for _, r := range rows {
							fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", cst(r.CreatedAt), r.RequestID, r.AccountID, r.Model,
								r.PromptTokens, r.CachedTokens, r.CompletionTokens, r.ReasoningTokens, orDash(r.Class), r.Outcome, r.Amount, r.Discount, r.Cash, r.Shortfall)
						}
					})
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&account, "account", "", "only this account")
	cmd.Flags().StringVar(&since, "since", "", "from this time on (YYYY-MM-DD[ hh:mm:ss] in $"+envTZ+", default UTC+08:00; or RFC 3339)")
	cmd.Flags().StringVar(&model, "model", "", "only this model")
	cmd.Flags().IntVar(&limit, "limit", 0, "only the newest N rows (printed oldest first; 0 = all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (amounts in micros, 1e-6 CNY, with the parts that paid)")
	cmd.Flags().BoolVar(&daily, "daily", false, "one line per day (Beijing time), account, key, model and outcome, rolled-up days included")
	return cmd
}

// printDailyUsage prints glm usage --daily.
func printDailyUsage(cmd *cobra.Command, st *billing.Store, uf billing.UsageFilter, asJSON bool) error {
	days, err := st.DailyUsage(cmd.Context(), uf)
	if err != nil {
		return err
	}
	if days == nil {
		days = []billing.UsageDay{}
	}
	return printList(cmd.OutOrStdout(), asJSON, days, "DAY\tACCOUNT\tKEY\tMODEL\tOUTCOME\tREQUESTS\tPROMPT\tCOMPLETION\tAMOUNT\tPACKAGES\tCASH\tUNPAID",
		func(tw io.Writer) {
			for _, d := range days {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", d.Day, d.AccountID, d.KeyID, d.Model, d.Outcome,
					d.Requests, d.PromptTokens, d.CompletionTokens, d.Amount, d.Discount, d.Cash, d.Shortfall)
			}
		})
}

func newBillsCmd() *cobra.Command {
	var f storeFlags
	var account, month string
	var months int
	var asCSV, asJSON bool
	cmd := &cobra.Command{
		Use:   "bills",
		Short: "Monthly statements (月度账单) derived from the usage rows",
		Long: "Without --month: one line per month (账期, 总消费金额, 应付金额, 优惠金额). With --month:\n" +
			"that month per day and model, with the cost by tier (input, cached input, output with\n" +
			"reasoning inside, per call, image; exact, before each request's rounding up to the micro);\n" +
			"--csv exports it (导出数据).",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asCSV && month == "" {
				return errors.New("--csv exports one month's statement: give --month YYYY-MM too")
			}
			if month != "" {
				if _, err := time.Parse("2006-01", month); err != nil {
					return fmt.Errorf("--month %q: want YYYY-MM, e.g. %s", month, time.Now().In(billing.BillingZone).Format("2006-01"))
				}
			}
			ctx := cmd.Context()
			return withBilling(ctx, &f, func(st *billing.Store) error {
				out := cmd.OutOrStdout()
				if month != "" {
					b, err := st.MonthlyBill(ctx, account, month)
					if err != nil {
						return err
					}
					switch {
					case asCSV:
						return b.WriteCSV(out)
					case asJSON:
						return writeJSONOut(out, b)
					}
					tw := newTable(out)
					fmt.Fprintf(tw, "账期 %s\t总消费金额 ¥%s\t应付金额 ¥%s\t优惠金额 ¥%s\t未付 ¥%s\n", b.Period, b.Totals.Total, b.Totals.Payable, b.Totals.Discount, b.Totals.Unpaid)
					fmt.Fprintln(tw, "DATE\tMODEL\tREQUESTS\tPROMPT\tCACHED\tCOMPLETION\tREASONING\tTOTAL\tPAYABLE\tDISCOUNT\tINPUT ¥\tCACHED ¥\tOUTPUT ¥\tPER CALL ¥\tIMAGE ¥")
					for _, l := range b.Lines {
						fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Date, l.Model, l.Requests,
							l.PromptTokens, l.CachedTokens, l.CompletionTokens, l.ReasoningTokens, l.Total, l.Payable, l.Discount,
							l.Tiers.Input, l.Tiers.CachedInput, l.Tiers.Output, l.Tiers.PerCall, l.Tiers.Image)
					}
					return tw.Flush()
				}
				bills, err := st.RecentBills(ctx, account, months, time.Now())
				if err != nil {
					return err
				}
				return printList(out, asJSON, bills, "账期\t总消费金额\t应付金额\t优惠金额\tREQUESTS", func(tw io.Writer) {
					for _, b := range bills {
						fmt.Fprintf(tw, "%s\t¥ %s\t¥ %s\t¥ %s\t%d\n", b.Period, b.Totals.Total, b.Totals.Payable, b.Totals.Discount, b.Totals.Requests)
					}
				})
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&account, "account", "", "only this account (default: all)")
	cmd.Flags().StringVar(&month, "month", "", "YYYY-MM: that month's details")
	cmd.Flags().IntVar(&months, "months", 6, "without --month: how many recent months to list")
	cmd.Flags().BoolVar(&asCSV, "csv", false, "with --month: CSV export")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (amounts in micros)")
	return cmd
}

func newPricesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "prices", Short: "Show and edit the price table (CNY per 1K tokens; per image)"}
	cmd.AddCommand(newPricesListCmd(), newPricesSetCmd(), newPricesDeleteCmd())
	return cmd
}

func newPricesListCmd() *cobra.Command {
	var f storeFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List prices",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return withBilling(ctx, &f, func(st *billing.Store) error {
				ps, err := st.Prices(ctx)
				if err != nil {
					return err
				}
				type pj struct {
					Model   string `json:"model"`
					Input   string `json:"input_cny_per_1k"`
					Cached  string `json:"cached_input_cny_per_1k"`
					Output  string `json:"output_cny_per_1k"`
					PerCall string `json:"per_call_cny"`
					Image   string `json:"image_cny"`
				}
				out := []pj{}
				for _, p := range ps {
					out = append(out, pj{p.Model, p.Input.String(), p.Cached().String(), p.Output.String(), p.PerCall.String(), p.Image.String()})
				}
				return printList(cmd.OutOrStdout(), asJSON, out, "MODEL\tINPUT ¥/1K\tCACHED ¥/1K\tOUTPUT ¥/1K\tPER CALL ¥\tIMAGE ¥", func(tw io.Writer) {
					for _, p := range ps {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Model, p.Input, p.Cached(), p.Output, p.PerCall, p.Image)
					}
				})
			})
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newPricesSetCmd() *cobra.Command {
	var f storeFlags
	var in, cached, out, perCall, image, both, config string
	var force bool
	cmd := &cobra.Command{
		Use:   "set MODEL",
		Short: "Set a model's price ('*' prices every model without a row)",
		Example: "  glm prices set glm-4 --price 0.1\n" +
			"  glm prices set my-vllm-model --input 0.001 --output 0.002\n" +
			"  glm prices set cogview-3 --image 0.25\n" +
			"  glm prices set glm-4.7 --input 0.002 --cached-input 0.0004 --output 0.008 --per-call 0.01",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			change := admin.PriceInput{Price: admin.CNY(both), Input: admin.CNY(in), CachedInput: admin.CNY(cached),
				Output: admin.CNY(out), PerCall: admin.CNY(perCall), Image: admin.CNY(image)}
			if err := change.Check(args[0]); err != nil {
				return inFlags(validationErr(err), priceFlagNames())
			}
			if err := checkModels(ctx, config, force, "MODEL", args); err != nil {
				return err
			}
			return withBilling(ctx, &f, func(st *billing.Store) error {
				// As before: an unreadable price table counts as empty, so
				// the model starts from a zero price.
				ps, _ := st.Prices(ctx)
				p, err := change.Apply(billing.PriceIn(ps, args[0]))
				if err != nil {
					return inFlags(validationErr(err), priceFlagNames())
				}
				if err := st.SetPrice(ctx, p); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: input ¥%s/1K, cached input ¥%s/1K, output ¥%s/1K, per call ¥%s, image ¥%s\nrunning servers charge it within %d s (their price refresh; through the admin API, PUT /admin/v1/prices/%s, at once on the serving process)\n",
					p.Model, p.Input, p.Cached(), p.Output, p.PerCall, p.Image, int(billing.DefaultPriceRefresh.Seconds()), p.Model)
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&both, "price", "", "input and output price, CNY per 1K tokens")
	cmd.Flags().StringVar(&in, "input", "", "input price, CNY per 1K tokens")
	cmd.Flags().StringVar(&cached, "cached-input", "", "price of prompt tokens served from the upstream's cache, CNY per 1K tokens (0 = the input price)")
	cmd.Flags().StringVar(&out, "output", "", "output price (reasoning tokens included), CNY per 1K tokens")
	cmd.Flags().StringVar(&perCall, "per-call", "", "price per web_search use, CNY")
	cmd.Flags().StringVar(&image, "image", "", "price per image, CNY")
	modelCheckFlags(cmd, &config, &force)
	return cmd
}

// newAccountsCmd: accounts live in the platform store; billing adds the
// balance column.
func newAccountsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "accounts", Short: "Create, list, disable and enable accounts"}
	cmd.AddCommand(newAccountsCreateCmd(), newAccountsListCmd(), newAccountsSwitchCmd(true), newAccountsSwitchCmd(false))
	return cmd
}

func newAccountsCreateCmd() *cobra.Command {
	var f storeFlags
	var name string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create [ID]",
		Short: "Create an account (the id defaults to a random one)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return f.withStore(ctx, func(s *store.SQL) error {
				id := ""
				if len(args) == 1 {
					id = args[0]
				}
				a, err := admin.CreateAccount(ctx, s, id, name, time.Now())
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSONOut(cmd.OutOrStdout(), map[string]any{"id": a.ID, "name": a.Name, "created_at": a.CreatedAt})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created account %s\n", a.ID)
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "display name")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newAccountsListCmd() *cobra.Command {
	var f storeFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List accounts with their cash balance",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return f.withStore(ctx, func(s *store.SQL) error {
				accts, err := s.ListAccounts(ctx)
				if err != nil {
					return err
				}
				return withBilling(ctx, &f, func(st *billing.Store) error {
					type aj struct {
						ID        string    `json:"id"`
						Name      string    `json:"name"`
						CreatedAt time.Time `json:"created_at"`
						Balance   int64     `json:"balance_micros"`
					}
					rows := []aj{}
					for _, a := range accts {
						b, err := st.Balance(ctx, a.ID)
						if err != nil {
							return err
						}
						rows = append(rows, aj{a.ID, a.Name, a.CreatedAt, int64(b.Cash)})
					}
					return printList(cmd.OutOrStdout(), asJSON, rows, "ID\tNAME\tCREATED\tBALANCE ¥", func(tw io.Writer) {
						for _, r := range rows {
							fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, r.Name, cst(r.CreatedAt), billing.Micros(r.Balance))
						}
					})
				})
			})
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// modelCheckFlags adds the flags of the served-model check.
func modelCheckFlags(cmd *cobra.Command, config *string, force *bool) {
	cmd.Flags().StringVar(config, "config", "", "backends file of glm serve: model names are checked against its models (default: the Zhipu catalogue)")
	cmd.Flags().BoolVar(force, "force", false, "accept model names no backend serves (yet)")
}

// priceFlagNames pairs the admin API's price fields with glm prices set's
// flags, so a validation error speaks in flags.
func priceFlagNames() []string {
	return []string{"price, input, cached_input, output, per_call or image is required",
		"--price, --input, --cached-input, --output, --per-call or --image is required",
		"cached_input", "--cached-input", "per_call", "--per-call"}
}
