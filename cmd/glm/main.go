// Command glm is the glmkit CLI: the client-side cookbook commands (chat,
// embed, token, rag, extract, analyze) and the self-hosted platform
// (serve, keys, limits, accounts, packages, bills). It is the only place
// that reads flags, environment and config files and wires the parts
// together.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// newRoot lists every command: the whole CLI is visible here, with no
// registration hidden in init functions.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "glm",
		Short:         "glmkit: the GLM-4 V4 platform, both sides of the wire",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		// Client side: talk V4 to the Zhipu cloud or to glm serve.
		newChatCmd(), newEmbedCmd(), newTokenCmd(), newRagCmd(), newExtractCmd(), newAnalyzeCmd(), newAsyncCmd(),
		newTokenizeCmd(), newRerankCmd(),
		// Server side: the platform and its operator commands.
		newServeCmd(), newKeysCmd(), newUsersCmd(), newLimitsCmd(),
		newAccountsCmd(), newPackagesCmd(), newTopupCmd(), newCashCmd(), newAuditCmd(), newUsageCmd(), newLogsCmd(), newBillsCmd(), newPricesCmd(), newRetentionCmd(),
		newBenchCmd(), // measuring the server: the fault suite's soak
	)
	return root
}

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "glm:", err)
		os.Exit(1)
	}
}
