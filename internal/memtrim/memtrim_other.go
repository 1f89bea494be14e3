//go:build !linux

package memtrim

// dropExecutablePages does nothing where MADV_PAGEOUT does not exist.
func dropExecutablePages() uint64 { return 0 }
