package metered

import "github.com/glmkit/glmkit/platform"

// EndMetrics, when the Service's Metrics also implement it, sees every
// call's settled row once, whoever the caller (a sync or streamed request,
// an async task, a later batch line): tokens and cost per model and
// account are counted from the same row the request log keeps.
type EndMetrics interface {
	Ended(row platform.RequestLog)
}

func (c *Call) countEnded(row *platform.RequestLog) {
	if m, ok := c.s.metrics.(EndMetrics); ok {
		m.Ended(*row)
	}
}
