package admin

// The admin API: accounts, keys, packages, top-ups, usage, bills, prices
// and limits over HTTP, for the operator and the console. Same data and
// rules as the `glm accounts|keys|packages|topup|usage|bills|prices|limits`
// commands (the validators of this package serve both); errors use the V4
// envelope of the server's one error writer.

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/envelope"
	"github.com/glmkit/glmkit/platform/limits"
	"github.com/glmkit/glmkit/platform/mux"
)

// Prefix is where the admin routes live, outside the V4 prefix so no
// V4 client path can reach them.
const Prefix = "/admin/v1"

// maxBody bounds admin request bodies (they are small JSON objects).
const maxBody = 1 << 20

// KeyStore is what the admin API needs from the key store: the
// platform's KeyStore plus masked listing (platform/store.SQL has both).
type KeyStore interface {
	platform.KeyStore
	ListKeysMasked(ctx context.Context, accountID string) ([]platform.Key, error)
}

// Revoker revokes a key so that the serving process refuses it at once
// (auth.Authenticator): a revoke through the API must not wait for the
// key cache's recheck on the process that answered it.
type Revoker interface {
	Revoke(ctx context.Context, keyID string) error
}

// Options configure the admin API. Token, Accounts, Keys, Billing and
// Revoker are required.
type Options struct {
	// Token is the admin bearer token (GLMKIT_ADMIN_TOKEN or the 0600
	// admin.token file of the data dir, chosen by glm serve).
	Token    string
	Accounts platform.AccountStore
	Keys     KeyStore
	Billing  *billing.Store
	Revoker  Revoker
	// PackagesChanged, when set, is told about each grant so this
	// process's meter uses the package at once (billing.Engine's
	// PackagesChanged); other processes see it within their recheck.
	PackagesChanged func(accountID string)
	// PackageRevoked, when set, is told about each revoke so this
	// process's meter stops paying from the package at once
	// (billing.Engine's PackageRevoked); other processes stop at their
	// next lease renewal.
	PackageRevoked func(accountID, packageID string)
	// PricesChanged, when set, is told about a price row set or deleted
	// through the API so this process charges by it at once; other
	// processes see it within billing.DefaultPriceRefresh.
	PricesChanged func()
	// AccountChanged, when set, is told about a disabled or enabled
	// account so this process applies it at once (auth.Authenticator's
	// AccountChanged).
	AccountChanged func(accountID string)
	// Models, when set, reports whether this platform serves a model:
	// price rows, package scopes and limits naming another are refused
	// unless forced ("force": true).
	Models func(string) bool
	// Limits, when set, is the limiter's reloader: a limit change through
	// the API is applied on this process at once (Reload), and GET
	// /limits shows what it enforces. Other processes pick changes up
	// within their reload interval.
	Limits *limits.Reloader
	// Users, when set, serves /users (the console's people, glm users).
	Users  UserStore
	Logger *slog.Logger
	Now    func() time.Time
}

type adminAPI struct {
	o         Options
	log       *slog.Logger
	now       func() time.Time
	tokenHash [32]byte
}

// adminFunc is an admin route body. A returned error is answered with the
// V4 envelope (a *platform.Error as is, anything else as a 500 whose cause
// is only logged).
type adminFunc func(w http.ResponseWriter, r *http.Request) error

// NewHandler returns the admin API, routes under Prefix, to be mounted on
// a listener's root mux.
func NewHandler(o Options) *mux.Mux {
	a := &adminAPI{o: o, log: o.Logger, now: o.Now, tokenHash: sha256.Sum256([]byte(o.Token))}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	m := mux.New(a.now)
	for _, rt := range []struct {
		method, path string
		fn           adminFunc
	}{
		{"GET", "/accounts", a.listAccounts},
		{"POST", "/accounts", a.createAccount},
		{"GET", "/accounts/{account}/keys", a.listKeys},
		{"POST", "/accounts/{account}/keys", a.createKey},
		{"DELETE", "/accounts/{account}/keys/{key}", a.revokeKey},
		{"GET", "/accounts/{account}/packages", a.listPackages},
		{"POST", "/accounts/{account}/packages", a.grantPackage},
		{"POST", "/accounts/{account}/topup", a.topUp},
		{"GET", "/packages", a.listPackages},
		{"GET", "/usage", a.usage},
		{"GET", "/bills", a.bills},
		{"GET", "/prices", a.listPrices},
		{"PUT", "/prices/{model}", a.setPrice},
		{"POST", "/accounts/{account}/cash/adjust", a.adjustCash},
		{"POST", "/accounts/{account}/disable", a.switchAccount(true)},
		{"POST", "/accounts/{account}/enable", a.switchAccount(false)},
		{"POST", "/packages/{package}/revoke", a.revokePackage},
		{"POST", "/packages/{package}/adjust", a.adjustPackage},
		{"DELETE", "/prices/{model}", a.deletePrice},
		{"GET", "/audit", a.auditLog},
		{"GET", "/limits", a.listLimits},
		{"GET", "/limits/accounts/{id}", a.getLimit(platform.LimitAccount)},
		{"PUT", "/limits/accounts/{id}", a.setLimit(platform.LimitAccount)},
		{"DELETE", "/limits/accounts/{id}", a.clearLimit(platform.LimitAccount)},
		{"GET", "/limits/keys/{id}", a.getLimit(platform.LimitKey)},
		{"PUT", "/limits/keys/{id}", a.setLimit(platform.LimitKey)},
		{"DELETE", "/limits/keys/{id}", a.clearLimit(platform.LimitKey)},
		{"GET", "/users", a.listUsers},
		{"POST", "/users", a.createUser},
		{"POST", "/users/{email}/disable", a.disableUser},
		{"PUT", "/users/{email}/password", a.setUserPassword},
	} {
		m.HandleFunc(rt.method+" "+Prefix+rt.path, a.wrap(rt.fn))
	}
	return m
}

// wrap authenticates the admin token and answers errors.
func (a *adminAPI) wrap(fn adminFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := platform.NewID(a.now())
		w.Header().Set("X-Request-Id", id)
		if err := a.authorize(r); err != nil {
			envelope.WriteError(w, id, err)
			return
		}
		err := fn(w, r)
		if err == nil {
			a.log.Info("admin", "method", r.Method, "path", r.URL.Path, "request_id", id)
			return
		}
		e := platform.AsError(err)
		if e.Code == platform.CodeInternal {
			a.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "request_id", id, "err", err)
		}
		envelope.WriteError(w, id, e)
	}
}

// authorize compares the bearer token in constant time (over SHA-256
// digests, so neither the content nor the length leaks through timing).
func (a *adminAPI) authorize(r *http.Request) *platform.Error {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(h) >= 7 && strings.EqualFold(h[:7], "Bearer ") {
		h = strings.TrimSpace(h[7:])
	}
	if h == "" {
		return platform.Errorf(platform.CodeNoAuth, "admin token required: Authorization: Bearer <admin token>")
	}
	got := sha256.Sum256([]byte(h))
	if subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) != 1 {
		return platform.Errorf(platform.CodeInvalidToken, "invalid admin token")
	}
	return nil
}

// decodeAdmin reads a bounded JSON body into v. Unknown fields are refused
// (1210): an operator's typo must not silently do something else.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return &platform.Error{Code: platform.CodeBadParams, Message: "could not read the request body", Err: err}
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return platform.Errorf(platform.CodeBadParams, "request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := envelope.JSONProblem(err)
		if strings.HasPrefix(err.Error(), "json: unknown field") {
			msg = strings.TrimPrefix(err.Error(), "json: ")
		}
		return platform.Errorf(platform.CodeBadParams, "request body is not valid JSON for this API: %s", msg)
	}
	if dec.More() {
		return platform.Errorf(platform.CodeBadParams, "request body has data after the JSON object")
	}
	return nil
}

// notFound is 404 with 1214, the code glm serve uses for unknown ids.
func notFound(format string, args ...any) error {
	return &platform.Error{Code: platform.CodeInvalidField, HTTP: http.StatusNotFound, Message: fmt.Sprintf(format, args...)}
}

// account loads the {account} of the path: 1214/404 when unknown.
func (a *adminAPI) account(r *http.Request) (platform.Account, error) {
	id := r.PathValue("account")
	if !ValidAccountID(id) {
		return platform.Account{}, notFound("no account %s", envelope.Quote(id))
	}
	acct, err := a.o.Accounts.GetAccount(r.Context(), id)
	if errors.Is(err, platform.ErrNotFound) {
		return platform.Account{}, notFound("no account %s", envelope.Quote(id))
	}
	if err != nil {
		return platform.Account{}, fmt.Errorf("admin: get account: %w", err)
	}
	return acct, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("admin: encode: %w", err)
	}
	envelope.WriteJSON(w, status, b)
	return nil
}

// --- accounts ---

// Account is the JSON form of an account with its cash balance.
type Account struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	CreatedAt     time.Time `json:"created_at"`
	BalanceMicros int64     `json:"balance_micros"`
	BalanceCNY    string    `json:"balance_cny"`
}

func (a *adminAPI) accountJSON(ctx context.Context, acct platform.Account) (Account, error) {
	b, err := a.o.Billing.Balance(ctx, acct.ID)
	if err != nil {
		return Account{}, err
	}
	return Account{ID: acct.ID, Name: acct.Name, CreatedAt: acct.CreatedAt, BalanceMicros: int64(b.Cash), BalanceCNY: b.Cash.String()}, nil
}

func (a *adminAPI) listAccounts(w http.ResponseWriter, r *http.Request) error {
	accts, err := a.o.Accounts.ListAccounts(r.Context())
	if err != nil {
		return fmt.Errorf("admin: list accounts: %w", err)
	}
	out := make([]Account, 0, len(accts))
	for _, acct := range accts {
		j, err := a.accountJSON(r.Context(), acct)
		if err != nil {
			return err
		}
		out = append(out, j)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"data": out})
}

func (a *adminAPI) createAccount(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	ctx := r.Context()
	acct, err := CreateAccount(ctx, a.o.Accounts, in.ID, in.Name, a.now())
	if err != nil {
		return err
	}
	j, err := a.accountJSON(ctx, acct)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, j)
}

// --- keys ---

// Keys are answered as Key (the same JSON as glm keys --json).

func (a *adminAPI) listKeys(w http.ResponseWriter, r *http.Request) error {
	acct, err := a.account(r)
	if err != nil {
		return err
	}
	keys, err := a.o.Keys.ListKeysMasked(r.Context(), acct.ID)
	if err != nil {
		return fmt.Errorf("admin: list keys: %w", err)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"data": KeyViews(keys)})
}

func (a *adminAPI) createKey(w http.ResponseWriter, r *http.Request) error {
	acct, err := a.account(r)
	if err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
	}
	if r.ContentLength != 0 { // an empty body is a key without a name
		if err := decode(w, r, &in); err != nil {
			return err
		}
	}
	if len(in.Name) > 200 {
		return invalid("name: at most 200 bytes")
	}
	k, err := CreateKey(r.Context(), a.o.Keys, acct.ID, in.Name, a.now())
	if err != nil {
		return fmt.Errorf("admin: create key: %w", err)
	}
	// The full key is shown once, here (docs/design.md §3 Keys).
	return writeJSON(w, http.StatusCreated, KeyView(k, true))
}

// revokeKey revokes through the Authenticator, so this process refuses the
// key at once; other replicas within their --key-recheck bound.
func (a *adminAPI) revokeKey(w http.ResponseWriter, r *http.Request) error {
	acct, err := a.account(r)
	if err != nil {
		return err
	}
	id := r.PathValue("key")
	if !platform.ValidKeyID(id) {
		return notFound("no key %s", envelope.Quote(id))
	}
	ctx := r.Context()
	k, err := a.o.Keys.GetKey(ctx, id)
	if errors.Is(err, platform.ErrNotFound) || (err == nil && k.AccountID != acct.ID) {
		return notFound("account %s has no key %s", acct.ID, id)
	}
	if err != nil {
		return fmt.Errorf("admin: get key: %w", err)
	}
	if err := a.o.Revoker.Revoke(ctx, id); err != nil {
		return fmt.Errorf("admin: revoke key: %w", err)
	}
	if k.RevokedAt.IsZero() {
		k.RevokedAt = a.now().UTC()
	}
	return writeJSON(w, http.StatusOK, KeyView(k, false))
}
