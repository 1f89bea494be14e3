package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/zhipuai"
)

func newTokenCmd() *cobra.Command {
	var (
		conn cliClientFlags
		ttl  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a JWT for ZHIPUAI_API_KEY (the tutorial's generate_token)",
		Long: `glm token signs the tutorial's JWT with the API key's secret: HS256, header
sign_type "SIGN", claims api_key, exp and timestamp in milliseconds. Use it as
"Authorization: Bearer <token>" with curl or any HTTP client.`,
		Example: `  curl -H "Authorization: Bearer $(glm token --ttl 10m)" \
       -H 'Content-Type: application/json' \
       -d '{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}' \
       "${ZHIPUAI_BASE_URL:-https://open.bigmodel.cn/api/paas/v4}/chat/completions"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := conn.key()
			if err != nil {
				return err
			}
			if ttl <= 0 {
				return errors.New("--ttl must be positive, e.g. 30m")
			}
			tok, err := zhipuai.GenerateToken(key, ttl)
			if err != nil {
				return cliStripPrefix(err)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok)
			return err
		},
	}
	cmd.Flags().StringVar(&conn.apiKey, "api-key", "", "API key id.secret (default $ZHIPUAI_API_KEY)")
	cmd.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	return cmd
}
