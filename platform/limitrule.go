package platform

import "time"

// Limit rule subjects: what a LimitRule applies to.
const (
	LimitAccount = "account"
	LimitKey     = "key"
)

// LimitRule is an operator-set limit for one account or key: what `glm
// limits` and the admin API set and answer (this is their JSON), what the
// database keeps, and what every glm serve loads into its limiter
// (platform/limits). Zero fields are off.
type LimitRule struct {
	Subject string `json:"subject"` // LimitAccount or LimitKey
	ID      string `json:"id"`
	// MaxConcurrent caps requests in flight (1302).
	MaxConcurrent int64 `json:"max_concurrent"`
	// RPM caps requests started in any 60-second window (1303).
	RPM int64 `json:"rpm"`
	// DailyTokens caps tokens used per calendar day in the billing zone
	// (1304).
	DailyTokens int64     `json:"daily_tokens"`
	UpdatedAt   time.Time `json:"updated_at"`
}
