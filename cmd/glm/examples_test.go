package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// exampleArgs splits an example line into arguments the way a shell
// would for these lines: quotes group, a comment or redirection ends it.
func exampleArgs(line string) []string {
	var args []string
	var cur strings.Builder
	quote, in := byte(0), false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				args = append(args, cur.String())
				cur.Reset()
				in = false
			}
		case c == '#' || c == '>' || c == '|' || c == ')':
			i = len(line)
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		args = append(args, cur.String())
	}
	return args
}

// Every command has --help examples, and each example line names a real
// command and parses with that command's own flags and arguments.
func TestEveryCommandHasWorkingExamples(t *testing.T) {
	root := newRoot()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || strings.HasPrefix(c.CommandPath(), "glm completion") {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s: no --help example", c.CommandPath())
		}
		for _, line := range strings.Split(c.Example, "\n") {
			line = strings.TrimSpace(line)
			i := strings.Index(line, "glm ")
			if i < 0 {
				continue
			}
			args := exampleArgs(line[i+len("glm "):])
			found, rest, err := newRoot().Find(args)
			if err != nil {
				t.Errorf("%s: example %q: %v", c.CommandPath(), line, err)
				continue
			}
			found.InitDefaultHelpFlag()
			found.InitDefaultVersionFlag()
			if err := found.ParseFlags(rest); err != nil {
				t.Errorf("%s: example %q: %v", c.CommandPath(), line, err)
				continue
			}
			if found.Args != nil {
				if err := found.Args(found, found.Flags().Args()); err != nil {
					t.Errorf("%s: example %q: %v", c.CommandPath(), line, err)
				}
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// Help lists each command once: a command added twice is listed twice
// and built twice at every start.
func TestRootListsEachCommandOnce(t *testing.T) {
	seen := map[string]int{}
	for _, c := range newRoot().Commands() {
		seen[c.Name()]++
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("command %q: got %d times in the root, want once", name, n)
		}
	}
}
