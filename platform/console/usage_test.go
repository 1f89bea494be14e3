package console_test

import (
	"context"
	"fmt"
	"html"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
)

var (
	requestRow = regexp.MustCompile(`data-request="([^"]+)"`)
	olderLink  = regexp.MustCompile(`<a href="([^"]+)" id="older">`)
	byKeyRow   = regexp.MustCompile(`(?s)<table id="by-key">.*?<tbody>(.*?)</tbody>`)
)

// The recent-requests table pages through every row of its filter once —
// 30 of the 47 rows share one millisecond, across page boundaries — and
// the key filter narrows the table and the per-key totals to that key.
func TestUsagePagesAndKeyFilter(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		keys := []string{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}
		var rows []platform.RequestLog
		want := map[string][]string{} // filter → ids
		for i := range 47 {
			at := now.Add(-time.Duration(i) * time.Second)
			if i >= 5 && i < 35 {
				at = now.Add(-5 * time.Second)
			}
			r := platform.RequestLog{ID: fmt.Sprintf("req%03d", i), CreatedAt: at, AccountID: "acme", KeyID: keys[i%2],
				Model: []string{"glm-4", "glm-4v", "glm-4-flash"}[i%3], Endpoint: platform.EndpointChat, HTTPStatus: 200,
				Usage: platform.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}}
			rows = append(rows, r)
			want[""] = append(want[""], r.ID)
			want["key="+r.KeyID] = append(want["key="+r.KeyID], r.ID)
			want["key="+r.KeyID+"&model="+r.Model] = append(want["key="+r.KeyID+"&model="+r.Model], r.ID)
		}
		if err := e.st.InsertRequestLogs(ctx, rows); err != nil {
			t.Fatal(err)
		}
		b := e.browser()
		b.mustSignIn("owner@acme.test", "owner-pass")
		for _, filter := range []string{"", "key=" + keys[1], "key=" + keys[0] + "&model=glm-4v"} {
			var seen []string
			path := "/console/usage?" + filter
			for pages := 0; path != ""; pages++ {
				if pages > 10 {
					t.Fatalf("%s: more than 10 pages", filter)
				}
				resp, page := b.do("GET", path, nil)
				if resp.StatusCode != 200 {
					t.Fatalf("GET %s: got %d, want 200", path, resp.StatusCode)
				}
				for _, m := range requestRow.FindAllStringSubmatch(page, -1) {
					seen = append(seen, m[1])
				}
				path = ""
				if m := olderLink.FindStringSubmatch(page); m != nil {
					path = html.UnescapeString(m[1])
				}
				if filter != "" && pages == 0 {
					tbl := byKeyRow.FindStringSubmatch(page)
					if tbl == nil || strings.Count(tbl[1], "<tr>") != 1 {
						t.Errorf("%s: got per-key table %q, want the one key", filter, tbl)
					}
				}
			}
			w := append([]string(nil), want[filter]...)
			sort.Sort(sort.Reverse(sort.StringSlice(w)))
			sort.Sort(sort.Reverse(sort.StringSlice(seen)))
			if strings.Join(seen, " ") != strings.Join(w, " ") {
				t.Errorf("%s: got rows %v over the pages, want each of %v once", filter, seen, w)
			}
		}
	})
}
