package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newInitCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create glm serve's data: the database (migrated) and the master key",
		Long: "Every command but glm serve refuses a database that does not exist; glm init makes one\n" +
			"where glm serve would (the data directory is --data-dir, else $" + envHome + ", else the\n" +
			"directory of --db, else ./.glmkit), so operator commands can prepare accounts, packages\n" +
			"and keys before the first start. On an existing database it checks it opens and says so.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l := sf.locate()
			existed, err := l.exists()
			if err != nil {
				return err
			}
			s, err := sf.openStore(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			verb := "created"
			if existed {
				verb = "already there"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "database %s: %s\nmaster key: %s\n", l.dsn, verb, l.keyPath())
			return nil
		},
	}
	sf.register(cmd)
	return cmd
}
