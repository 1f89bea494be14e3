package httpapi

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

func (m *meteredEnv) admin(method, path, body string, token ...string) *http.Response {
	m.t.Helper()
	tok := testAdminToken
	if len(token) > 0 {
		tok = token[0]
	}
	req, err := http.NewRequest(method, m.http.URL+admin.Prefix+path, strings.NewReader(body))
	if err != nil {
		m.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		m.t.Fatal(err)
	}
	return resp
}

func adminDecode[T any](t *testing.T, resp *http.Response, status int) T {
	t.Helper()
	b := read(t, resp)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, b)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return v
}

// The admin API end to end, mounted beside the V4 API: token, accounts,
// keys (a key made here works on the V4 API, a revoke is refused at once),
// packages, top-ups, usage, bills (JSON = CSV = usage rows), prices.
func TestAdminAPI(t *testing.T) {
	m := newMeteredEnv(t, time.Now())
	wantError(t, m.admin("GET", "/accounts", "", ""), 401, "1001")
	wantError(t, m.admin("GET", "/accounts", "", "wrong-token-wrong-token"), 401, "1002")

	acct := adminDecode[admin.Account](t, m.admin("POST", "/accounts", `{"id":"acme","name":"ACME"}`), 201)
	if acct.ID != "acme" || acct.BalanceMicros != 0 {
		t.Fatalf("%+v", acct)
	}
	wantError(t, m.admin("POST", "/accounts", `{"id":"acme"}`), 409, "1214")
	key := adminDecode[admin.Key](t, m.admin("POST", "/accounts/acme/keys", `{"name":"ci"}`), 201)
	if !strings.HasPrefix(key.Key, key.ID+".") || key.AccountID != "acme" {
		t.Fatalf("%+v", key)
	}
	// No money yet: 1113 before any upstream call.
	wantError(t, m.do("POST", "/chat/completions", meteredChat, "Bearer "+key.Key), 429, "1113")
	if n := len(m.up.Requests()); n != 0 {
		t.Fatalf("upstream called %d times", n)
	}
	// ¥0.5 as a JSON number, read from its text (never a float).
	top := adminDecode[map[string]any](t, m.admin("POST", "/accounts/acme/topup", `{"cny":0.5,"note":"test"}`), 200)
	if top["balance_micros"] != float64(500_000) {
		t.Fatalf("%v", top)
	}
	pkg := adminDecode[admin.Package](t, m.admin("POST", "/accounts/acme/packages", `{"tokens":1000,"days":30,"models":["glm-4"],"name":"p","type":"purchased"}`), 201)
	if pkg.Status != billing.StatusActive || pkg.TokensRemaining != 1000 || pkg.Type != "purchased" {
		t.Fatalf("%+v", pkg)
	}
	m.up.Enqueue(zhipuaitest.Text("ok").WithUsage(600, 600).Times(2))
	for i := 0; i < 2; i++ {
		resp := m.do("POST", "/chat/completions", meteredChat, "Bearer "+key.Key)
		if b := read(t, resp); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	}
	if err := m.eng.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	usage := adminDecode[struct{ Data []admin.Usage }](t, m.admin("GET", "/usage?account=acme&model=glm-4", ""), 200)
	rejected := 0
	for _, u := range usage.Data {
		if u.Outcome == billing.OutcomeRejected {
			rejected++
		}
	}
	if len(usage.Data) != 3 || rejected != 1 {
		t.Fatalf("usage: want the refused request's row and two charged rows: %+v", usage)
	}
	var total, disc, cash billing.Micros
	for _, u := range usage.Data {
		total += u.Charge.Amount
		disc += u.Charge.Discount
		cash += u.Charge.Cash
	}
	// 2400 tokens at 100 µ¥: 1000 from the package, 1400 in cash.
	if total != 240_000 || disc != 100_000 || cash != 140_000 {
		t.Fatalf("total %d discount %d cash %d", total, disc, cash)
	}
	month := time.Now().In(billing.BillingZone).Format("2006-01")
	bill := adminDecode[billing.Bill](t, m.admin("GET", "/bills?account=acme&month="+month, ""), 200)
	if bill.Totals.Total != total || bill.Totals.Discount != disc || bill.Totals.Payable != cash || bill.Totals.Requests != 2 {
		t.Fatalf("bill %+v", bill.Totals)
	}
	resp := m.admin("GET", "/bills?account=acme&month="+month+"&format=csv", "")
	body := read(t, resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %s", resp.StatusCode, body)
	}
	recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil || len(recs) < 3 || recs[len(recs)-1][1] != "total" {
		t.Fatalf("csv %q: %v", body, err)
	}
	if !strings.Contains(strings.Join(recs[len(recs)-1], ","), total.String()) {
		t.Fatalf("csv total row %v, want %s", recs[len(recs)-1], total)
	}
	accts := adminDecode[struct{ Data []admin.Account }](t, m.admin("GET", "/accounts", ""), 200)
	for _, a := range accts.Data {
		if a.ID == "acme" && a.BalanceMicros != 500_000-140_000 {
			t.Fatalf("balance %+v", a)
		}
	}
	// Revoke: refused by this process at once.
	adminDecode[admin.Key](t, m.admin("DELETE", "/accounts/acme/keys/"+key.ID, ""), 200)
	wantError(t, m.do("POST", "/chat/completions", meteredChat, "Bearer "+key.Key), 401, "1002")
	keys := adminDecode[struct{ Data []admin.Key }](t, m.admin("GET", "/accounts/acme/keys", ""), 200)
	if len(keys.Data) != 1 || keys.Data[0].RevokedAt == nil || keys.Data[0].Key != "" {
		t.Fatalf("keys %+v", keys)
	}
	// Prices: set exactly, read back.
	p := adminDecode[admin.Price](t, m.admin("PUT", "/prices/my-vllm", `{"input":"0.001","output":0.002}`), 200)
	if p.InputMicros != 1000 || p.OutputMicros != 2000 {
		t.Fatalf("%+v", p)
	}
	prices := adminDecode[struct{ Data []admin.Price }](t, m.admin("GET", "/prices", ""), 200)
	found := false
	for _, x := range prices.Data {
		found = found || (x.Model == "my-vllm" && x.Output == "0.002000")
	}
	if !found {
		t.Fatalf("prices %+v", prices)
	}
}
