package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/auth"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/envelope"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
	"github.com/glmkit/glmkit/zhipuai"
)

const testToken = "test-admin-token-0123456789"

// apiEnv is the admin API alone on loopback: a real SQLite store with one
// account and key, billing on its own SQLite file, real authentication.
// The tests that need the V4 API beside it live in platform/httpapi.
type apiEnv struct {
	t    *testing.T
	url  string
	bill *billing.Store
	key  platform.Key
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "glm.db"), store.Options{MasterKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateAccount(ctx, platform.Account{ID: "acct-1", Name: "default", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	key, err := CreateKey(ctx, st, "acct-1", "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bst := billing.NewStore(ledger.New(st.Handle()), nil)
	srv := httptest.NewServer(NewHandler(Options{Token: testToken, Accounts: st, Keys: st, Billing: bst,
		Revoker: auth.New(st, auth.Options{}), Users: st}))
	t.Cleanup(srv.Close)
	return &apiEnv{t: t, url: srv.URL, bill: bst, key: key}
}

func (e *apiEnv) do(method, path, body string, token ...string) (int, []byte, http.Header) {
	e.t.Helper()
	tok := testToken
	if len(token) > 0 {
		tok = token[0]
	}
	req, err := http.NewRequest(method, e.url+Prefix+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// wantError checks a request's answer: status, media type, V4 envelope.
func (e *apiEnv) wantError(t *testing.T, method, path, body string, status int, code string, token ...string) {
	t.Helper()
	got, b, h := e.do(method, path, body, token...)
	var env zhipuai.ErrorEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("%s %s %s: body %s: %v", method, path, body, b, err)
	}
	if got != status || string(env.Error.Code) != code || env.Error.Message == "" || env.RequestID == "" ||
		h.Get("Content-Type") != envelope.ContentJSON {
		t.Fatalf("%s %s %s: got %d %s, want %d with code %s in the V4 envelope", method, path, body, got, b, status, code)
	}
}

// Bad admin input always gets the V4 envelope with 1210/1213/1214 (or a
// 404 for an unknown id), never a 500.
func TestAdminBadInput(t *testing.T) {
	e := newAPIEnv(t)
	e.wantError(t, "GET", "/accounts", "", 401, "1001", "")
	e.wantError(t, "GET", "/accounts", "", 401, "1002", "wrong-token-wrong-token")
	for _, c := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"POST", "/accounts", `{"id":`, 400, "1210"},
		{"POST", "/accounts", ``, 400, "1210"},
		{"POST", "/accounts", `{"id":"a b"}`, 400, "1214"},
		{"POST", "/accounts", `{"idd":"x"}`, 400, "1210"},
		{"POST", "/accounts", `[1,2]`, 400, "1210"},
		{"GET", "/accounts/nope/keys", ``, 404, "1214"},
		{"DELETE", "/accounts/acct-1/keys/zz", ``, 404, "1214"},
		{"DELETE", "/accounts/acct-1/keys/0123456789abcdef0123456789abcdef", ``, 404, "1214"},
		{"POST", "/accounts/acct-1/packages", `{"days":3}`, 400, "1213"},
		{"POST", "/accounts/acct-1/packages", `{"tokens":10}`, 400, "1213"},
		{"POST", "/accounts/acct-1/packages", `{"tokens":-1,"days":3}`, 400, "1214"},
		{"POST", "/accounts/acct-1/packages", `{"tokens":"10","days":3}`, 400, "1210"},
		{"POST", "/accounts/acct-1/packages", `{"tokens":10,"days":0}`, 400, "1214"},
		{"POST", "/accounts/acct-1/packages", `{"tokens":10,"days":99999999}`, 400, "1214"},
		{"POST", "/accounts/acct-1/packages", `{"tokens":10,"days":3,"type":"free"}`, 400, "1214"},
		{"POST", "/accounts/acct-1/packages", `{"tokens":10,"expires_at":"tomorrow"}`, 400, "1214"},
		{"POST", "/accounts/acct-1/packages", `{"tokens":10,"expires_at":"2000-01-01"}`, 400, "1214"},
		{"POST", "/accounts/acct-1/topup", `{}`, 400, "1213"},
		{"POST", "/accounts/acct-1/topup", `{"cny":"abc"}`, 400, "1214"},
		{"POST", "/accounts/acct-1/topup", `{"cny":0.0000001}`, 400, "1214"},
		{"POST", "/accounts/acct-1/topup", `{"cny":-5}`, 400, "1214"},
		{"POST", "/accounts/acct-1/topup", `{"cny":1e30}`, 400, "1214"},
		{"POST", "/accounts/acct-1/topup", `{"cny":0}`, 400, "1214"},
		{"POST", "/accounts/nope/topup", `{"cny":1}`, 404, "1214"},
		{"GET", "/usage?since=yesterday", ``, 400, "1214"},
		{"GET", "/usage?limit=-3", ``, 400, "1214"},
		{"GET", "/bills?month=2024-13", ``, 400, "1214"},
		{"GET", "/bills?format=xml", ``, 400, "1214"},
		{"GET", "/bills?format=csv", ``, 400, "1213"},
		{"GET", "/bills?months=0", ``, 400, "1214"},
		{"PUT", "/prices/glm-4", `{}`, 400, "1213"},
		{"PUT", "/prices/glm-4", `{"price":"x"}`, 400, "1214"},
		{"PUT", "/prices/glm-4", `{"price":"0.1","input":"0.2"}`, 400, "1214"},
		{"PUT", "/prices/glm-4", `{"price":true}`, 400, "1214"},
		{"PUT", "/prices/glm-4", `{"cached_input":"-1"}`, 400, "1214"},
		{"PUT", "/prices/glm-4", `{"per_call":"0.0000001"}`, 400, "1214"},
		{"GET", "/nothing", ``, 404, "1222"},
		{"PATCH", "/accounts", ``, 405, "1222"},
		{"PATCH", "/accounts/acct-1/keys", ``, 405, "1222"},
	} {
		t.Run(c.method+c.path+c.body, func(t *testing.T) { e.wantError(t, c.method, c.path, c.body, c.status, c.code) })
	}
	// Nothing half-written: no package or credit came from the above.
	ps, err := e.bill.ListPackages(context.Background(), "")
	if err != nil || len(ps) != 0 {
		t.Fatalf("packages: got %+v %v, want none", ps, err)
	}
	if b, _ := e.bill.Balance(context.Background(), "acct-1"); b.Cash != 0 {
		t.Fatalf("balance: got %s, want 0", b.Cash)
	}
}

// Bad limit input: 1210 / 1213 / 1214 with the right status, never 500,
// and nothing stored.
func TestAdminLimitsBadInput(t *testing.T) {
	e := newAPIEnv(t)
	k := "/limits/keys/" + e.key.ID
	for _, c := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"PUT", k, `{"rpm":`, 400, "1210"},
		{"PUT", k, ``, 400, "1210"},
		{"PUT", k, `{"rpm":"2"}`, 400, "1210"},
		{"PUT", k, `{"rpm":1.5}`, 400, "1210"},
		{"PUT", k, `{"rps":2}`, 400, "1210"},
		{"PUT", k, `{}`, 400, "1213"},
		{"PUT", k, `{"rpm":null}`, 400, "1213"},
		{"PUT", k, `{"rpm":-1}`, 400, "1214"},
		{"PUT", k, `{"max_concurrent":1000001}`, 400, "1214"},
		{"PUT", k, `{"daily_tokens":1000000000000000001}`, 400, "1214"},
		{"PUT", k, `{"rpm":99999999999999999999}`, 400, "1210"},
		{"PUT", "/limits/keys/zz", `{"rpm":1}`, 404, "1214"},
		{"PUT", "/limits/keys/0123456789abcdef0123456789abcdef", `{"rpm":1}`, 404, "1214"},
		{"PUT", "/limits/accounts/nope", `{"rpm":1}`, 404, "1214"},
		{"PUT", "/limits/accounts/a%20b", `{"rpm":1}`, 404, "1214"},
		{"GET", "/limits/accounts/acct-1", ``, 404, "1214"},
		{"DELETE", "/limits/accounts/acct-1", ``, 404, "1214"},
		{"PUT", "/limits/widgets/x", `{"rpm":1}`, 404, "1222"},
	} {
		t.Run(c.method+c.path+c.body, func(t *testing.T) { e.wantError(t, c.method, c.path, c.body, c.status, c.code) })
	}
	e.wantError(t, "PUT", k, `{"rpm":1}`, 401, "1001", "")
	if rs, err := e.bill.ListLimits(context.Background()); err != nil || len(rs) != 0 {
		t.Fatalf("stored: got %+v %v, want none", rs, err)
	}
}
