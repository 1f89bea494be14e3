package main

import "github.com/spf13/cobra"

// commandExamples are the --help examples of the commands whose
// definition does not carry its own, by command path. Every command has
// one (examples_test.go checks each runs through the command's own flag
// parser); a group's example shows its subcommands at work.
func commandExamples() map[string]string {
	return map[string]string{
		"glm rag": `  glm rag index examples/docs
  glm rag search "VideoAnalytica dataset"
  glm rag ask "澜港地铁有几条线路？"`,
		"glm serve": `  glm serve                                      # ./.glmkit, 127.0.0.1:8080, ZHIPUAI_API_KEY for the cloud
  glm serve --config examples/serve.jsonc        # backends and settings from a file
  glm serve --addr 0.0.0.0:8080 --admin-addr 127.0.0.1:9090 --data-dir /var/lib/glmkit
  glm serve --db postgres://glmkit@db:5432/glmkit --replicas 3 --data-dir /var/lib/glmkit`,
		"glm keys": `  glm keys create --account acme --name ci
  glm keys list
  glm keys revoke 0123456789abcdef0123456789abcdef`,
		"glm keys create": `  glm keys create                                # for the default account
  glm keys create --account acme --name ci --json`,
		"glm keys list": `  glm keys list
  glm keys list --account acme --json`,
		"glm keys revoke": `  glm keys revoke 0123456789abcdef0123456789abcdef
  glm keys revoke 0123456789abcdef0123456789abcdef --account acme`,
		"glm limits": `  glm limits set --account acme --rpm 60
  glm limits list
  glm limits clear --account acme`,
		"glm limits list": `  glm limits list
  glm limits list --json`,
		"glm limits clear": `  glm limits clear --account acme
  glm limits clear --key 0123456789abcdef0123456789abcdef`,
		"glm accounts": `  glm accounts create acme --name "ACME Ltd"
  glm accounts list`,
		"glm accounts create": `  glm accounts create acme --name "ACME Ltd"
  glm accounts create --json                     # a random id`,
		"glm accounts list": `  glm accounts list
  glm accounts list --json`,
		"glm packages": `  glm packages grant --account acme --tokens 1000000 --days 30
  glm packages list --account acme`,
		"glm packages list": `  glm packages list
  glm packages list --account acme --json`,
		"glm usage": `  glm usage --limit 20                           # the 20 newest rows
  glm usage --account acme --since 2026-03-01
  glm usage --daily --account acme --json`,
		"glm bills": `  glm bills                                      # the last 6 months, all accounts
  glm bills --month 2026-03 --account acme
  glm bills --month 2026-03 --account acme --csv > acme-2026-03.csv`,
		"glm prices": `  glm prices list
  glm prices set glm-4 --price 0.1`,
		"glm prices list": `  glm prices list
  glm prices list --json`,
		"glm retention": `  glm retention run
  glm retention run --older-than 30d`,
		"glm users": `  echo "$PASSWORD" | glm users create owner@acme.example --account acme --password-stdin
  glm users list --account acme`,
		"glm users create": `  echo "$PASSWORD" | glm users create owner@acme.example --account acme --password-stdin
  echo "$PASSWORD" | glm users create ops@example.com --role admin --password-stdin`,
		"glm users list": `  glm users list
  glm users list --account acme --json`,
		"glm users disable": `  glm users disable owner@acme.example`,
		"glm users passwd":  `  echo "$NEW_PASSWORD" | glm users passwd owner@acme.example --password-stdin`,
		"glm cash":          `  glm cash adjust --account acme --cny -45 --reason 'topped up 50 instead of 5'`,
		"glm bench":         `  glm bench faults`,
		"glm bench faults": `  glm bench faults                               # one round of every fault on SQLite
  glm bench faults --duration 10m --scale 2       # a soak
  glm bench faults --pg-dsn postgres://postgres@127.0.0.1:5432/faults --pg-data /var/lib/postgresql/15/main`,
		"glm init": `  glm init --data-dir /var/lib/glmkit
  glm init --db /var/lib/glmkit/glm.db`,
		"glm": `  glm serve
  glm chat "你好"
  glm logs --status 5xx
  glm version`,
	}
}

// addExamples gives each command without an example its entry in ex.
func addExamples(c *cobra.Command, ex map[string]string) {
	if c.Example == "" {
		c.Example = ex[c.CommandPath()]
	}
	for _, sub := range c.Commands() {
		addExamples(sub, ex)
	}
}
