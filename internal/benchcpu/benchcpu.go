//go:build unix

// Package benchcpu reports the CPU a benchmark's process spends per unit
// of work ("cpu-µs/op"): the figure that moves least with a shared
// machine's load, where wall-clock ns/op does (BENCHMARKS.md). It counts
// the whole process — an in-process server's share included.
package benchcpu

import (
	"syscall"
	"testing"
	"time"
)

// Now is the user and system CPU time this process has used so far.
func Now(b testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Report reports the CPU used since start (a Now) divided over n units
// as the metric unit, in microseconds ("cpu-µs/op", "cpu-µs/row").
func Report(b *testing.B, start time.Duration, n int, unit string) {
	b.ReportMetric(float64((Now(b)-start).Nanoseconds())/1e3/float64(n), unit)
}
