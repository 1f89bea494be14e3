package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// eachStore runs f on a fresh SQLite store and, with GLMKIT_TEST_PG_DSN,
// a fresh PostgreSQL schema.
func eachStore(t *testing.T, f func(t *testing.T, s *SQL)) {
	t.Run("sqlite", func(t *testing.T) { f(t, openTemp(t)) })
	t.Run("postgres", func(t *testing.T) {
		s, err := Open(context.Background(), freshPG(t), Options{MasterKey: testMaster})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
}

func TestUsersAndSessions(t *testing.T) {
	eachStore(t, func(t *testing.T, s *SQL) {
		ctx := context.Background()
		now := time.UnixMilli(1_790_000_000_000).UTC()
		u := platform.User{ID: "usr_1", Email: "a@b.test", AccountID: "acme", Role: platform.RoleOwner, PasswordHash: "h1", CreatedAt: now}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		dup := u
		dup.ID = "usr_2"
		if err := s.CreateUser(ctx, dup); !IsUniqueViolation(err) {
			t.Fatalf("second user with the same e-mail: got %v, want a unique violation", err)
		}
		got, err := s.GetUserByEmail(ctx, "a@b.test")
		if err != nil || got != u {
			t.Fatalf("got %+v, %v, want %+v", got, err, u)
		}
		for _, id := range []string{"s1", "s2", "s3"} {
			if err := s.CreateSession(ctx, platform.Session{ID: id, UserID: u.ID, CSRF: "c" + id, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		live := func(id string, at time.Time) bool {
			_, _, err := s.GetSession(ctx, id, at)
			if err != nil && !errors.Is(err, platform.ErrNotFound) {
				t.Fatal(err)
			}
			return err == nil
		}
		if se, gu, err := s.GetSession(ctx, "s1", now); err != nil || se.CSRF != "cs1" || gu.Email != u.Email {
			t.Fatalf("got session %+v user %+v err %v, want s1 of a@b.test", se, gu, err)
		}
		if live("s1", now.Add(time.Hour)) {
			t.Fatal("session alive at its expiry, want ended")
		}
		if err := s.RevokeSession(ctx, "s1", now); err != nil || live("s1", now) {
			t.Fatalf("after sign-out: got live=%v err=%v, want ended", live("s1", now), err)
		}
		if err := s.SetPassword(ctx, u.ID, "h2", "s2", now); err != nil {
			t.Fatal(err)
		}
		if !live("s2", now) || live("s3", now) {
			t.Fatalf("after a password change from s2: got s2=%v s3=%v, want s2 only", live("s2", now), live("s3", now))
		}
		if err := s.DisableUser(ctx, u.ID, now); err != nil || live("s2", now) {
			t.Fatalf("after disable: got s2 live=%v err=%v, want ended", live("s2", now), err)
		}
		if err := s.DisableUser(ctx, "nobody", now); !errors.Is(err, platform.ErrNotFound) {
			t.Fatalf("disable unknown: got %v, want ErrNotFound", err)
		}
		if n, err := s.PurgeSessions(ctx, now.Add(2*time.Hour)); err != nil || n != 3 {
			t.Fatalf("purge: got %d, %v, want 3", n, err)
		}
	})
}

// Recent requests page on a (created_at, id) cursor: rows sharing the
// boundary millisecond are neither skipped nor repeated, and the model
// and key filters page the same way.
func TestRecentRequestLogs(t *testing.T) {
	eachStore(t, func(t *testing.T, s *SQL) {
		ctx := context.Background()
		t0 := time.UnixMilli(1_790_000_000_000).UTC()
		var rows []platform.RequestLog
		for i := range 7 {
			m := "glm-4"
			if i%2 == 1 {
				m = "glm-4v"
			}
			at := t0.Add(time.Duration(i) * time.Second)
			if i >= 2 && i <= 4 { // r2, r3, r4 share one millisecond
				at = t0.Add(4 * time.Second)
			}
			rows = append(rows, platform.RequestLog{ID: fmt.Sprintf("r%d", i), CreatedAt: at, AccountID: "acme",
				KeyID: fmt.Sprintf("k%d", i%3), Model: m, Endpoint: platform.EndpointChat, Usage: platform.Usage{TotalTokens: i}})
		}
		rows = append(rows, platform.RequestLog{ID: "x", CreatedAt: t0.Add(time.Hour), AccountID: "other", Endpoint: platform.EndpointChat})
		if err := s.InsertRequestLogs(ctx, rows); err != nil {
			t.Fatal(err)
		}
		ids := func(rs []platform.RequestLog) string {
			out := ""
			for _, r := range rs {
				out += r.ID + " "
			}
			return out
		}
		// pages walks every page of f, size n, and returns the ids seen.
		pages := func(f platform.RecentRequests, n int) string {
			f.AccountID, f.Limit = "acme", n
			all := ""
			for range 10 {
				page, err := s.RecentRequestLogs(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				all += ids(page) + "| "
				if len(page) < n {
					return all
				}
				f.BeforeAt, f.BeforeID = page[n-1].CreatedAt, page[n-1].ID
			}
			return all
		}
		// r4 ends the first page; r3 and r2 share its millisecond.
		if got, want := pages(platform.RecentRequests{}, 3), "r6 r5 r4 | r3 r2 r1 | r0 | "; got != want {
			t.Errorf("pages of 3: got %q, want %q", got, want)
		}
		if got, want := pages(platform.RecentRequests{}, 2), "r6 r5 | r4 r3 | r2 r1 | r0 | "; got != want {
			t.Errorf("pages of 2: got %q, want %q", got, want)
		}
		if got, want := pages(platform.RecentRequests{Model: "glm-4v"}, 2), "r5 r3 | r1 | "; got != want {
			t.Errorf("model filter: got %q, want %q", got, want)
		}
		if got, want := pages(platform.RecentRequests{KeyID: "k1"}, 1), "r4 | r1 | | "; got != want {
			t.Errorf("key filter: got %q, want %q", got, want)
		}
		if got, want := pages(platform.RecentRequests{KeyID: "k0", Model: "glm-4"}, 5), "r6 r0 | "; got != want {
			t.Errorf("key and model filter: got %q, want %q", got, want)
		}
	})
}
