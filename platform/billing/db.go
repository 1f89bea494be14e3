package billing

import (
	"strconv"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform/store"
)

// ledgerDB is billing's view of the platform's one database handle
// (store.DB): billing's tables are migrated with the store's, its
// transactions run on the same pool through store.DB.Tx, which retries
// transient conflicts.
type ledgerDB struct{ *store.DB }

// ms is the storage form of a time: Unix milliseconds in a BIGINT, the one
// time type both engines compare identically.
func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func isNoRows(err error) bool { return store.IsNoRows(err) }

// params returns "$start, $start+1, …", n placeholders, for statements
// whose argument count varies.
func params(start, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(start + i))
	}
	return b.String()
}

// arg appends v to args and returns its placeholder.
func arg(args *[]any, v any) string {
	*args = append(*args, v)
	return "$" + strconv.Itoa(len(*args))
}
