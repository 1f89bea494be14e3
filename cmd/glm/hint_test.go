package main

import (
	"strings"
	"testing"
)

// The "is … the V4 API base?" hint follows a 404 only when the base does
// not look like one; on the right base a 404 is the API's own answer.
func TestNotFoundHintOnlyForAWrongBase(t *testing.T) {
	srv := cliFake(t)
	_, _, err := cliRunCmd(t, "", "async", "--id", "no-such-task")
	if err == nil || strings.Contains(err.Error(), "the V4 API base") {
		t.Fatalf("unknown task on the right base %s: got %v, want the API's answer without the hint", srv.URL(), err)
	}
	_, _, err = cliRunCmd(t, "", "chat", "--base-url", strings.TrimSuffix(srv.URL(), "/api/paas/v4")+"/api/v4", "hi")
	if err == nil || !strings.Contains(err.Error(), "the V4 API base") {
		t.Fatalf("chat on a wrong base: got %v, want the hint", err)
	}
}
