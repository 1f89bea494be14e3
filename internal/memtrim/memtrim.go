// Package memtrim gives back the memory a server used only to start
// (docs/design.md §6 "Memory after start").
//
// Starting glm serve runs every package's initialisation, the migrations
// and the first queries: garbage on the heap, and code and tables of the
// executable the kernel mapped in while they ran (it maps file pages in
// blocks around each one touched, so ~100 packages' start-up code left
// ~22 MB of the binary resident). None of it is needed again, but the
// heap's garbage waits for the next collection and a mapped file page
// stays in the process until memory is short.
package memtrim

import "runtime/debug"

// AfterStart collects the heap and returns its free pages to the system,
// then asks the kernel to unmap the executable's read-only pages from
// this process (Linux; elsewhere only the heap). Pages that run again —
// the request path, the pollers — are mapped back on their next use, from
// the page cache; only code that never runs again stays out. It reports
// how many bytes of the executable it asked the kernel to drop.
func AfterStart() (exeBytes uint64) {
	debug.FreeOSMemory()
	return dropExecutablePages()
}
