package h1client

import (
	"sync"
	"time"
)

// pool holds idle connections per host, most recently used last (taken
// first: a hot connection, and the cold ones age out). It runs no
// goroutine: a timer is armed only while it holds a connection with an
// idle timeout to enforce.
type pool struct {
	mu    sync.Mutex
	hosts map[string][]*conn
	n     int
	timer *time.Timer
	armed bool
}

func (t *Transport) maxIdle() int {
	if t.MaxIdleConns > 0 {
		return t.MaxIdleConns
	}
	return 100 // http.Transport's DefaultTransport
}

func (t *Transport) maxIdlePerHost() int {
	if t.MaxIdleConnsPerHost > 0 {
		return t.MaxIdleConnsPerHost
	}
	return 2 // http.DefaultMaxIdleConnsPerHost
}

// take removes and returns the most recently idle connection to key.
func (p *pool) take(key string) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs := p.hosts[key]
	if len(cs) == 0 {
		return nil
	}
	c := cs[len(cs)-1]
	cs[len(cs)-1] = nil
	p.hosts[key] = cs[:len(cs)-1]
	p.n--
	return c
}

// put adds c; over the per-host limit c is closed, over the total limit
// the least recently used connection is (both as http.Transport does).
func (p *pool) put(c *conn) {
	t := c.t
	p.mu.Lock()
	if p.hosts == nil {
		p.hosts = make(map[string][]*conn)
	}
	cs := p.hosts[c.key]
	if len(cs) >= t.maxIdlePerHost() {
		p.mu.Unlock()
		c.close()
		return
	}
	c.idleAt = time.Now()
	p.hosts[c.key] = append(cs, c)
	p.n++
	var evict *conn
	if p.n > t.maxIdle() {
		evict = p.removeOldestLocked()
	}
	if t.IdleConnTimeout > 0 && !p.armed {
		p.armed = true
		if p.timer == nil {
			p.timer = time.AfterFunc(t.IdleConnTimeout, func() { p.sweep(t.IdleConnTimeout) })
		} else {
			p.timer.Reset(t.IdleConnTimeout)
		}
	}
	p.mu.Unlock()
	if evict != nil {
		evict.close()
	}
}

// removeOldestLocked removes the connection idle the longest.
func (p *pool) removeOldestLocked() *conn {
	var oldest string
	var at time.Time
	for k, cs := range p.hosts {
		if len(cs) > 0 && (at.IsZero() || cs[0].idleAt.Before(at)) {
			oldest, at = k, cs[0].idleAt
		}
	}
	if at.IsZero() {
		return nil
	}
	cs := p.hosts[oldest]
	c := cs[0]
	copy(cs, cs[1:])
	cs[len(cs)-1] = nil
	p.hosts[oldest] = cs[:len(cs)-1]
	p.n--
	return c
}

// sweep closes the connections idle for d or longer and re-arms the timer
// for the next one to expire, or leaves it unarmed when the pool is empty.
func (p *pool) sweep(d time.Duration) {
	now := time.Now()
	var expired []*conn
	p.mu.Lock()
	next := time.Duration(0)
	for k, cs := range p.hosts {
		i := 0
		for i < len(cs) && now.Sub(cs[i].idleAt) >= d {
			i++
		}
		if i > 0 {
			expired = append(expired, cs[:i]...)
			n := copy(cs, cs[i:])
			clear(cs[n:])
			p.hosts[k] = cs[:n]
			p.n -= i
		}
		if n := len(p.hosts[k]); n > 0 {
			if w := d - now.Sub(p.hosts[k][0].idleAt); next == 0 || w < next {
				next = w
			}
		} else {
			delete(p.hosts, k)
		}
	}
	if p.n > 0 {
		p.timer.Reset(max(next, time.Millisecond))
	} else {
		p.armed = false
	}
	p.mu.Unlock()
	for _, c := range expired {
		c.close()
	}
}

// closeAll closes every idle connection.
func (p *pool) closeAll() {
	p.mu.Lock()
	hosts := p.hosts
	p.hosts, p.n = nil, 0
	p.mu.Unlock()
	for _, cs := range hosts {
		for _, c := range cs {
			c.close()
		}
	}
}
