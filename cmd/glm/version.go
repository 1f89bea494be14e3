package main

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version and commit are set at link time for releases
// (-ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD)");
// otherwise the build reports what Go recorded (the module version, the
// VCS revision unless built with -buildvcs=false), or "devel"/"unknown".
var version, commit = "", ""

// buildInfo is what glm version prints: the version, the commit (with
// "-dirty" when the tree had changes), the Go toolchain and the build
// tags.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
	Tags    string `json:"tags"`
	OSArch  string `json:"os_arch"`
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Commit: cmp.Or(commit, "unknown"), Go: runtime.Version(), Tags: "none",
		OSArch: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if b.Version == "" {
		b.Version = bi.Main.Version
	}
	if b.Version == "" || b.Version == "(devel)" {
		b.Version = "devel"
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if commit == "" {
				b.Commit = s.Value
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		case "-tags":
			if s.Value != "" {
				b.Tags = s.Value
			}
		}
	}
	if dirty && b.Commit != "unknown" {
		b.Commit += "-dirty"
	}
	return b
}

func (b buildInfo) String() string {
	return fmt.Sprintf("glm %s\ncommit %s\n%s %s\nbuild tags: %s\n", b.Version, b.Commit, b.Go, b.OSArch, b.Tags)
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit, Go toolchain and build tags",
		Example: "  glm version\n  glm version --json\n  glm --version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := readBuildInfo()
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), b)
			}
			_, err := fmt.Fprint(cmd.OutOrStdout(), b.String())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// versionLine is the root's --version answer.
func versionLine() string {
	b := readBuildInfo()
	return strings.TrimSpace(fmt.Sprintf("%s (commit %s, %s)", b.Version, b.Commit, b.Go))
}
