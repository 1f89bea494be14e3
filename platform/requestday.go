package platform

// RequestDay is one billing day's requests of one key and model, from the
// request log (rows and retention's roll-ups together): what the console's
// usage charts draw (docs/console.md §5).
type RequestDay struct {
	Day      string // YYYY-MM-DD in the billing zone (UTC+8)
	KeyID    string
	Model    string
	Requests int64
	Tokens   int64 // prompt + completion
	Charge   int64 // micros
}
