package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/pgtest"
	"github.com/glmkit/glmkit/platform"
)

// The operator's query finds rows by each filter, newest first, with the
// cause of a failure and by either the server's or the client's id.
func TestQueryRequestLogs(t *testing.T) {
	engines := map[string]string{"sqlite": filepath.Join(t.TempDir(), "q.db")}
	if os.Getenv(pgtest.DSNEnv) != "" {
		engines["postgres"] = freshPG(t)
	}
	for name, dsn := range engines {
		t.Run(name, func(t *testing.T) {
			s := openEngine(t, dsn)
			ctx := context.Background()
			rows := []platform.RequestLog{
				{ID: "srv1", RequestID: "cli1", CreatedAt: t0(), AccountID: "acme", KeyID: "k1", Model: "glm-4", HTTPStatus: 200},
				{ID: "srv2", RequestID: "cli2", CreatedAt: t0().Add(time.Minute), AccountID: "acme", KeyID: "k2", Model: "glm-4",
					HTTPStatus: 502, ErrorCode: "1234", Backend: "vllm-a",
					ErrorDetail: "1234 网络错误: backend vllm-a: dial tcp 127.0.0.1:9: connect: connection refused"},
				{ID: "srv3", RequestID: "srv3", CreatedAt: t0().Add(2 * time.Minute), AccountID: "beta", KeyID: "k3", Model: "embedding-3", HTTPStatus: 429, ErrorCode: "1302"},
			}
			if err := s.InsertRequestLogs(ctx, rows); err != nil {
				t.Fatal(err)
			}
			ids := func(q LogQuery) string {
				got, err := s.QueryRequestLogs(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, r := range got {
					out = append(out, r.ID)
				}
				return strings.Join(out, ",")
			}
			for _, c := range []struct {
				name string
				q    LogQuery
				want string
			}{
				{"all newest first", LogQuery{}, "srv3,srv2,srv1"},
				{"limit keeps the newest", LogQuery{Limit: 1}, "srv3"},
				{"account", LogQuery{AccountID: "acme"}, "srv2,srv1"},
				{"key", LogQuery{KeyID: "k1"}, "srv1"},
				{"model", LogQuery{Model: "embedding-3"}, "srv3"},
				{"status", LogQuery{Status: 502}, "srv2"},
				{"status class", LogQuery{Status: 4}, "srv3"},
				{"code", LogQuery{Code: "1302"}, "srv3"},
				{"client id", LogQuery{RequestID: "cli2"}, "srv2"},
				{"server id", LogQuery{RequestID: "srv1"}, "srv1"},
				{"since", LogQuery{Since: t0().Add(time.Minute)}, "srv3,srv2"},
				{"until", LogQuery{Until: t0().Add(time.Minute)}, "srv1"},
			} {
				if got := ids(c.q); got != c.want {
					t.Errorf("%s: got %q, want %q", c.name, got, c.want)
				}
			}
			got, err := s.QueryRequestLogs(ctx, LogQuery{Status: 502})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].ErrorDetail != rows[1].ErrorDetail {
				t.Fatalf("error detail: got %+v, want %q", got, rows[1].ErrorDetail)
			}
		})
	}
}
