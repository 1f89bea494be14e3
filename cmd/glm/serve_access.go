package main

import (
	"log/slog"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/httpapi"
	"github.com/glmkit/glmkit/platform/metered"
)

// accessLog is glm serve --access-log: one log line per ended call (API
// requests and async task runs alike), written from the settled row every
// call hands its metrics (metered.EndMetrics). It sits beside the request
// log, never in its way: the row's storage path (batched, or with the
// usage row in one transaction) stays the metered call's.
type accessLog struct {
	*httpapi.Metrics
	log *slog.Logger
}

var _ metered.EndMetrics = accessLog{}

// Ended implements metered.EndMetrics: the series, then the line.
func (a accessLog) Ended(row platform.RequestLog) {
	a.Metrics.Ended(row)
	attrs := []any{"request_id", row.ID, "client_request_id", row.RequestID, "endpoint", row.Endpoint,
		"status", row.HTTPStatus, "code", row.ErrorCode, "account", row.AccountID, "key", row.KeyID,
		"model", row.Model, "backend", row.Backend, "stream", row.Stream, "prompt_tokens", row.Usage.PromptTokens,
		"completion_tokens", row.Usage.CompletionTokens, "charge_micros", int64(row.Charge.Amount), "latency_ms", row.LatencyMS}
	if row.ErrorDetail != "" {
		attrs = append(attrs, "err", row.ErrorDetail)
	}
	a.log.Info("access", attrs...)
}
