package memtrim

import (
	"bufio"
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// dropExecutablePages advises MADV_PAGEOUT (Linux 5.4+) over every
// read-only mapping of the executable: its code and constant data, never
// its writable data. The advice only drops clean pages no other process
// maps (the file keeps its bytes; no page is written or lost), so it is
// safe at any time; an older kernel refuses it and nothing changes.
//
// MADV_RANDOM first: a page fault on a file mapping otherwise reads 128 KB
// around the page and maps what of it is cached, so each function an idle
// server runs (a poller, the collector) would bring its neighbours back
// too — ~5 MB of pages nothing runs (docs/design.md §6 "Memory after
// start"). With it a fault reads the one page it needs.
func dropExecutablePages() uint64 {
	exe, err := os.Executable()
	if err != nil {
		return 0
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0
	}
	var dropped uint64
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		lo, hi, ok := readOnlyMapping(sc.Bytes(), exe)
		if !ok {
			continue
		}
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(lo), uintptr(hi-lo), unix.MADV_RANDOM)
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(lo), uintptr(hi-lo), unix.MADV_PAGEOUT); errno == 0 {
			dropped += hi - lo
		}
	}
	return dropped
}

// readOnlyMapping parses one line of /proc/self/maps ("lo-hi perms offset
// dev inode path") and reports the range of a mapping of path that is not
// writable.
func readOnlyMapping(line []byte, path string) (lo, hi uint64, ok bool) {
	f := bytes.Fields(line)
	if len(f) < 6 || string(f[5]) != path || len(f[1]) < 2 || f[1][1] == 'w' {
		return 0, 0, false
	}
	dash := bytes.IndexByte(f[0], '-')
	if dash < 0 {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseUint(string(f[0][:dash]), 16, 64)
	hi, err2 := strconv.ParseUint(string(f[0][dash+1:]), 16, 64)
	if err1 != nil || err2 != nil || hi <= lo {
		return 0, 0, false
	}
	return lo, hi, true
}
