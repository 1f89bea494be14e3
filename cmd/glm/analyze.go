package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/cookbook/analyst"
)

func newAnalyzeCmd() *cobra.Command {
	var (
		conn     cliClientFlags
		a        analyst.Analyst
		python   string
		timeout  time.Duration
		memMB    int
		cpuSec   int
		allowNet bool
		quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "analyze DATA.csv REQUEST...",
		Short: "Analyse a CSV file: GLM-4 writes Python, a sandbox runs it, charts are saved",
		Long: `glm analyze is the tutorial's data analyst. The model is told the CSV's columns,
inferred types and first rows, and gets a run_python tool. Each script runs in a
sandbox: a separate python3 -I process in a temporary directory holding a copy
of the CSV, with a wall-clock timeout (the process group is killed), memory,
CPU-time and file-size limits, no network (an empty network namespace where the
OS allows it, and a Python socket guard everywhere), and capped output. Output
and errors go back to the model, which can fix its code, until it answers in
words. Charts (plt.savefig or plt.show) are copied as PNG files to --out.

Python: --python, else the first of /usr/bin/python3 and python3 that imports
pandas; it also needs matplotlib (Debian: apt-get install python3-pandas
python3-matplotlib).`,
		Example: `  glm analyze examples/data/urban-rural-population.csv \
      "Read csv and draw the distribution of urban and rural population development in Arcadia"`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			errOut := cmd.ErrOrStderr()
			// Check the CSV and Python before spending a model call.
			if _, err := analyst.DescribeCSV(args[0]); err != nil {
				return err
			}
			py, err := analyst.FindPython(cmd.Context(), python)
			if err != nil {
				return err
			}
			client, err := conn.client()
			if err != nil {
				return err
			}
			sb := analyst.DefaultSandbox(py)
			sb.Timeout, sb.MemoryMB, sb.CPUSeconds, sb.AllowNetwork = timeout, memMB, cpuSec, allowNet
			a.Client, a.Sandbox = client, sb
			if !quiet {
				fmt.Fprintf(errOut, "python: %s · %s\n", py, sb.Isolation())
				a.Events = func(e analyst.Event) { cliShowRun(errOut, e) }
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			rep, err := a.Analyze(ctx, args[0], strings.Join(args[1:], " "))
			if err != nil {
				if rep != nil && len(rep.Charts) > 0 {
					fmt.Fprintf(errOut, "charts saved before the error: %s\n", strings.Join(rep.Charts, ", "))
				}
				return conn.explain(err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, rep.Answer)
			if len(rep.Charts) > 0 {
				fmt.Fprintln(out, "\nCharts:")
				for _, c := range rep.Charts {
					fmt.Fprintln(out, "  "+c)
				}
			}
			return nil
		},
	}
	conn.register(cmd)
	f := cmd.Flags()
	f.StringVar(&a.Model, "model", "glm-4", "chat model that writes the code")
	f.StringVar(&a.OutDir, "out", "glm-analyze-out", "directory for the charts (files of the same name are replaced)")
	f.IntVar(&a.MaxSteps, "max-steps", 8, "model calls before giving up")
	f.StringVar(&python, "python", "", "Python interpreter (default: /usr/bin/python3 or python3, whichever has pandas)")
	f.DurationVar(&timeout, "run-timeout", 60*time.Second, "wall-clock limit per script")
	f.IntVar(&memMB, "memory-mb", 1024, "address-space limit per script, MiB")
	f.IntVar(&cpuSec, "cpu-seconds", 0, "CPU-time limit per script (default: the run timeout)")
	f.BoolVar(&allowNet, "allow-network", false, "let the scripts use the network")
	f.BoolVarP(&quiet, "quiet", "q", false, "do not show the code and its output on stderr")
	return cmd
}

// cliShowRun shows the model's code and what it printed, so the user can
// follow (and check) what ran on their data.
func cliShowRun(w io.Writer, e analyst.Event) {
	if e.Result == nil {
		fmt.Fprintf(w, "── run %d: code ──\n%s\n", e.Step, strings.TrimRight(e.Code, "\n"))
		return
	}
	fmt.Fprintf(w, "── run %d: result (%s) ──\n%s\n", e.Step, e.Result.Duration.Round(time.Millisecond), analyst.ToolContent(e.Result))
	for _, s := range e.Saved {
		fmt.Fprintf(w, "chart saved: %s\n", s)
	}
}
