package memtrim

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestReadOnlyMapping(t *testing.T) {
	const exe = "/opt/glm/bin/glm"
	for _, c := range []struct {
		line   string
		lo, hi uint64
		ok     bool
	}{
		{"00400000-00fb8000 r-xp 00000000 fe:00 10027229   /opt/glm/bin/glm", 0x400000, 0xfb8000, true},
		{"00fb8000-01c5c000 r--p 00bb8000 fe:00 10027229   /opt/glm/bin/glm", 0xfb8000, 0x1c5c000, true},
		{"01c5c000-01d17000 rw-p 0185c000 fe:00 10027229   /opt/glm/bin/glm", 0, 0, false},       // writable data
		{"7f49958c3000-7f4995a00000 r-xp 00026000 fe:00 326269 /usr/lib/libc.so.6", 0, 0, false}, // another file
		{"38ffc3400000-38ffc5000000 rw-p 00000000 00:00 0", 0, 0, false},                         // anonymous
		{"zz-00fb8000 r-xp 00000000 fe:00 1 /opt/glm/bin/glm", 0, 0, false},
		{"00fb8000 r-xp 00000000 fe:00 1 /opt/glm/bin/glm", 0, 0, false},
		{"", 0, 0, false},
	} {
		lo, hi, ok := readOnlyMapping([]byte(c.line), exe)
		if lo != c.lo || hi != c.hi || ok != c.ok {
			t.Errorf("readOnlyMapping(%q) = %#x, %#x, %v, want %#x, %#x, %v", c.line, lo, hi, ok, c.lo, c.hi, c.ok)
		}
	}
}

// rssFile is the process's resident file-backed memory in kB.
func rssFile(t *testing.T) int {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		if f := bytes.Fields(line); len(f) >= 2 && string(f[0]) == "RssFile:" {
			n, err := strconv.Atoi(string(f[1]))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// TestAfterStartDropsExecutablePages checks that the executable's pages
// leave the process's resident set and that the process goes on running
// code from them (this test's own code after the call).
func TestAfterStartDropsExecutablePages(t *testing.T) {
	before := rssFile(t)
	dropped := AfterStart()
	if dropped == 0 {
		t.Skip("the kernel refused MADV_PAGEOUT (before Linux 5.4): nothing to check")
	}
	after := rssFile(t)
	if after >= before {
		t.Errorf("RssFile %d kB before, %d kB after dropping %d bytes of the executable, want fewer after", before, after, dropped)
	}
}

// TestAfterStartAdvisesRandomReads checks that every read-only mapping of
// the executable carries the random-access advice after AfterStart
// ("rr" in its smaps VmFlags), so a page that runs again does not bring
// its neighbours back with it.
func TestAfterStartAdvisesRandomReads(t *testing.T) {
	if AfterStart() == 0 {
		t.Skip("the kernel refused MADV_PAGEOUT (before Linux 5.4): nothing to check")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var mapping string
	checked := 0
	for _, line := range bytes.Split(smaps, []byte("\n")) {
		if _, _, ok := readOnlyMapping(line, exe); ok {
			mapping = string(line)
			continue
		}
		if f := bytes.Fields(line); mapping != "" && len(f) > 0 && string(f[0]) == "VmFlags:" {
			flags := strings.Fields(string(line[len("VmFlags:"):]))
			if !slices.Contains(flags, "rr") {
				t.Errorf("mapping %q: VmFlags %v, want rr (random reads) among them", mapping, flags)
			}
			mapping = ""
			checked++
		}
	}
	if checked == 0 {
		t.Fatalf("no read-only mapping of %s in /proc/self/smaps", exe)
	}
}
