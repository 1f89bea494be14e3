package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/store/storetest"
)

// TestCreateTaskCapped: a key's queued tasks stop at the cap; another
// key, and the same key once a task runs, can still submit.
func TestCreateTaskCapped(t *testing.T) {
	storetest.EachEngine(t, "taskcap", func(t *testing.T, dsn string) {
		ctx := context.Background()
		s, err := Open(ctx, dsn, Options{MasterKey: []byte("0123456789abcdef0123456789abcdef")})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.CreateAccount(ctx, platform.Account{ID: "a1", CreatedAt: t0()}); err != nil {
			t.Fatal(err)
		}
		submit := func(key string, i int) bool {
			t.Helper()
			ok, err := s.CreateTaskCapped(ctx, platform.Task{ID: fmt.Sprintf("%s-%d", key, i), AccountID: "a1", KeyID: key,
				RequestID: "r", Model: "glm-4", Request: []byte(`{}`), CreatedAt: t0()}, 3)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		for i := range 3 {
			if !submit("k1", i) {
				t.Fatalf("task %d of 3 refused; want the first 3 stored", i)
			}
		}
		if submit("k1", 3) {
			t.Fatal("got a 4th queued task for k1; want it refused at the cap of 3")
		}
		if !submit("k2", 0) {
			t.Fatal("another key's task was refused")
		}
		if _, err := s.ClaimTasks(ctx, "w", 1, t0(), t0().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if !submit("k1", 4) {
			t.Fatal("refused after one of k1's tasks left the queue; want room for one")
		}
	})
}
