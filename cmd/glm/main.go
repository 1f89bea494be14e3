// Command glm is the glmkit CLI: the client-side cookbook commands (chat,
// embed, token, rag, extract, analyze) and the self-hosted platform
// (serve, keys, limits, accounts, packages, bills). It is the only place
// that reads flags, environment and config files and wires the parts
// together.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/platform"
)

// newRoot lists every command: the whole CLI is visible here, with no
// registration hidden in init functions.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "glm",
		Short:         "glmkit: the GLM-4 V4 platform, both sides of the wire",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionLine(),
		// One zone for every time shown (clock.go): a bad $GLMKIT_TZ is
		// refused before anything is printed in another.
		PersistentPreRunE: func(*cobra.Command, []string) error { return checkZone() },
	}
	root.SetVersionTemplate("glm {{.Version}}\n")
	root.AddCommand(
		// Client side: talk V4 to the Zhipu cloud or to glm serve.
		newChatCmd(), newEmbedCmd(), newTokenCmd(), newRagCmd(), newExtractCmd(), newAnalyzeCmd(), newAsyncCmd(),
		newTokenizeCmd(), newRerankCmd(), newBatchCmd(),
		// Server side: the platform and its operator commands.
		newServeCmd(), newInitCmd(), newKeysCmd(), newUsersCmd(), newLimitsCmd(),
		newAccountsCmd(), newPackagesCmd(), newTopupCmd(), newCashCmd(), newAuditCmd(), newUsageCmd(), newLogsCmd(), newBillsCmd(), newPricesCmd(), newRetentionCmd(),
		newBenchCmd(), // measuring the server: the fault suite's soak
		newVersionCmd(),
	)
	addExamples(root, commandExamples())
	return root
}

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "glm:", cliMessage(err))
		os.Exit(1)
	}
}

// cliMessage is what the operator reads: a validator's refusal
// (*platform.Error) speaks in its message, without the V4 code the API
// adds; anything else as it is.
func cliMessage(err error) string {
	var pe *platform.Error
	if errors.As(err, &pe) && pe.Code != platform.CodeInternal && pe.Err == nil {
		return pe.Message
	}
	return err.Error()
}
