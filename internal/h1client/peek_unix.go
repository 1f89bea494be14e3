//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package h1client

import "syscall"

// peek looks at the socket without taking a byte or blocking (the runtime
// keeps sockets non-blocking): a read of 0 bytes means the server closed
// it, a byte means it sent something nobody asked for, "would block" means
// it is quiet and usable.
func (c *conn) peek(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
	// Anything but "would block" — EOF, a byte, a socket error — and the
	// connection is not reused.
	c.peekGone = err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
	return true
}
