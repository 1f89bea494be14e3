package files_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/files"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/storetest"
)

// TestServiceStorage: content kept in the database (PostgreSQL's way) or
// in a directory (SQLite's) reads back whole; a refusal by the quota
// leaves no content behind; delete removes both; another account sees
// the same 404 as a missing file.
func TestServiceStorage(t *testing.T) {
	storetest.EachEngine(t, "filesvc", func(t *testing.T, dsn string) {
		ctx := context.Background()
		st, err := store.Open(ctx, dsn, store.Options{MasterKey: []byte("0123456789abcdef0123456789abcdef")})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		for _, dir := range []string{"", t.TempDir()} {
			acct := "in-db"
			if dir != "" {
				acct = "in-dir"
			}
			fs, err := files.New(files.Options{Store: st, Dir: dir, MaxFileBytes: 4 << 20, QuotaBytes: 3 << 20})
			if err != nil {
				t.Fatal(err)
			}
			content := bytes.Repeat([]byte(`{"custom_id":"x","method":"POST","pad":"`+string(bytes.Repeat([]byte("x"), 80))+`"}`+"\n"), 20_000) // ~2.3 MB: several chunks
			f, err := fs.Create(ctx, acct, "in.jsonl", platform.PurposeBatch, content)
			if err != nil {
				t.Fatal(err)
			}
			_, got, err := fs.Content(ctx, acct, f.ID)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("%s: content: got %d bytes, %v; want %d back", acct, len(got), err, len(content))
			}
			_, err = fs.Create(ctx, acct, "more.jsonl", platform.PurposeBatch, content)
			if e := platform.AsError(err); e.Status() != 413 || e.Code != platform.CodeBadParams {
				t.Fatalf("%s: over the quota: got %v, want 413 with 1210", acct, err)
			}
			if dir != "" {
				if ents, _ := os.ReadDir(dir); len(ents) != 1 {
					t.Fatalf("%s: files in the directory after a refusal: got %d, want 1", acct, len(ents))
				}
			}
			if _, err := fs.Get(ctx, "someone-else", f.ID); platform.AsError(err).Status() != 404 {
				t.Fatalf("%s: another account: got %v, want 404", acct, err)
			}
			if err := fs.Delete(ctx, acct, f.ID); err != nil {
				t.Fatal(err)
			}
			if dir != "" {
				if _, err := os.Stat(filepath.Join(dir, f.ID)); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("%s: content after delete: %v", acct, err)
				}
			} else if b, _ := st.FileContent(ctx, f.ID); len(b) != 0 {
				t.Fatalf("%s: chunks after delete: %d bytes", acct, len(b))
			}
		}
	})
}

// TestCheckJSONL: what a batch file must be.
func TestCheckJSONL(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // "" ok, else a piece of the message
	}{
		{"{\"a\":1}\n{\"b\":2}\n", ""},
		{"{\"a\":1}\r\n\r\n{\"b\":2}", ""},
		{"{\"a\":1}\n[1,2]\n", "line 2 is not a JSON object"},
		{"\n\n", "at least one line"},
		{"\xff\n", "UTF-8"},
		{"{}\n{}\n{}\n", "at most 2 lines"},
	} {
		err := files.CheckJSONL([]byte(c.in), 2)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: got %v, want ok", c.in, err)
		case c.want != "" && (err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want))):
			t.Errorf("%q: got %v, want an error saying %q", c.in, err, c.want)
		}
	}
}
