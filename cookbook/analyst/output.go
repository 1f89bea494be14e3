package analyst

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func outOfMemory(stderr string) bool {
	for _, s := range []string{"MemoryError", "Unable to allocate", "Cannot allocate memory", "std::bad_alloc"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// capped keeps the first max bytes written and counts the rest, so a run
// printing gigabytes neither exhausts our memory nor blocks the child.
type capped struct {
	buf bytes.Buffer
	max int
	cut bool
}

func (c *capped) Write(p []byte) (int, error) {
	keep := p
	if room := c.max - c.buf.Len(); len(p) > room {
		keep = p[:max(room, 0)]
		c.cut = true
	}
	c.buf.Write(keep)
	return len(p), nil
}

func (c *capped) String() string {
	s := strings.ToValidUTF8(c.buf.String(), "")
	if c.cut {
		s += "\n…[output truncated]"
	}
	return s
}

var _ io.Writer = (*capped)(nil)

type fileStamp struct {
	size int64
	mod  time.Time
}

var imageExts = []string{".png", ".jpg", ".jpeg", ".svg", ".pdf", ".gif"}

func snapshot(dir string) map[string]fileStamp {
	m := map[string]fileStamp{}
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		// Regular files only: glm copies charts out with its own rights, so a
		// symlink the code planted must never be followed on the host.
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			rel, _ := filepath.Rel(dir, p)
			m[rel] = fileStamp{fi.Size(), fi.ModTime()}
		}
		return nil
	})
	return m
}

// changedImages lists image files that are new or changed since before.
func changedImages(dir string, before map[string]fileStamp) []string {
	var out []string
	for rel, st := range snapshot(dir) {
		if !slices.Contains(imageExts, strings.ToLower(filepath.Ext(rel))) {
			continue
		}
		if old, ok := before[rel]; ok && old == st {
			continue
		}
		out = append(out, rel)
	}
	slices.Sort(out)
	return out
}
