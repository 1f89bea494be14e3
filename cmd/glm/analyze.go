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
		maxProcs int
		allowNet bool
		unsafe   bool
		quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "analyze DATA.csv REQUEST...",
		Short: "Analyse a CSV file: GLM-4 writes Python, a sandbox runs it, charts are saved",
		Long: `glm analyze is the tutorial's data analyst. The model is told the CSV's columns,
inferred types and first rows, and gets a run_python tool. Each script runs in a
bubblewrap (bwrap) sandbox: new user, mount, pid, ipc, net and uts namespaces,
as uid 65534 (also when glm runs as root), a read-only view of /usr and a few
/etc files only (not the host's /etc/shadow, /tmp, /home, /root or /var), a
temporary directory holding a copy of the CSV as the only writable path, no
network, and every process of the run killed when it ends. Where glm may make
a cgroup (root, or a delegated cgroup v2 subtree), --memory-mb and --max-procs
cap the whole run, all its processes together; elsewhere --max-procs still
caps the run's tasks and --memory-mb caps each process. Also: a wall-clock
timeout, CPU-time and file-size limits, capped output. Output and errors go
back to the model, which can fix its code, until it answers in words. Charts
(plt.savefig or plt.show) are copied as PNG files to --out.

Without bwrap or user namespaces glm analyze refuses to run model code, unless
--unsafe-no-sandbox is given: the code then runs as your user, can read and
change your files, and only per-process limits apply.

Python: --python, else the first of /usr/bin/python3 and python3 that imports
pandas; it also needs matplotlib (Debian: apt-get install python3-pandas
python3-matplotlib bubblewrap).`,
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
			sb := analyst.DefaultSandbox(py)
			sb.Timeout, sb.MemoryMB, sb.CPUSeconds, sb.MaxProcs = timeout, memMB, cpuSec, maxProcs
			sb.AllowNetwork, sb.Unsafe = allowNet, unsafe
			if err := sb.Check(cmd.Context()); err != nil {
				return fmt.Errorf("%w; glm analyze will not run model-written code without it (install bubblewrap and allow user namespaces, or pass --unsafe-no-sandbox to run the code as your user, with access to your files)", err)
			}
			client, err := conn.client()
			if err != nil {
				return err
			}
			a.Client, a.Sandbox = client, sb
			if iso := sb.Isolation(); !quiet || strings.HasPrefix(iso, "UNSAFE") {
				fmt.Fprintf(errOut, "python: %s · %s\n", py, iso)
			}
			if !quiet {
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
	f.IntVar(&memMB, "memory-mb", 1024, "memory of a script run, MiB: all its processes together where a cgroup can be made, else each process")
	f.IntVar(&maxProcs, "max-procs", 64, "processes and threads of a script run, all together")
	f.IntVar(&cpuSec, "cpu-seconds", 0, "CPU-time limit per script (default: the run timeout)")
	f.BoolVar(&allowNet, "allow-network", false, "let the scripts use the network")
	f.BoolVar(&unsafe, "unsafe-no-sandbox", false, "where bubblewrap cannot run, run the scripts WITHOUT isolation, as your user (they can read and change your files)")
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
