package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform/billing"
)

// envTZ chooses the zone every command shows and reads times in: an IANA
// name ("Asia/Shanghai", "UTC"), "Local", or a fixed offset ("+08:00").
// The default is the billing zone (UTC+08:00, the zone bills and daily
// roll-ups are cut in), so a table and a bill agree on what "today" is.
const envTZ = "GLMKIT_TZ"

// timeLayout labels every time it prints with its offset.
const timeLayout = "2006-01-02 15:04:05 -07:00"

// showZone is the zone of $GLMKIT_TZ; an unusable value is an error the
// commands report in their own terms (zoneOrErr), here the default.
func showZone() *time.Location {
	z, err := zoneOf(os.Getenv(envTZ))
	if err != nil {
		return billing.BillingZone
	}
	return z
}

// checkZone reports an unusable $GLMKIT_TZ before a command prints
// anything in a zone the operator did not ask for.
func checkZone() error {
	if _, err := zoneOf(os.Getenv(envTZ)); err != nil {
		return fmt.Errorf("$%s: %w", envTZ, err)
	}
	return nil
}

func zoneOf(s string) (*time.Location, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return billing.BillingZone, nil
	case "Local", "local":
		return time.Local, nil
	}
	if s[0] == '+' || s[0] == '-' {
		t, err := time.Parse("-07:00", s)
		if err != nil {
			return nil, fmt.Errorf("%q: want an offset like +08:00", s)
		}
		_, off := t.Zone()
		return time.FixedZone(s, off), nil
	}
	z, err := time.LoadLocation(s)
	if err != nil {
		return nil, fmt.Errorf("%q: want a zone name (Asia/Shanghai, UTC), Local or an offset (+08:00)", s)
	}
	return z, nil
}

// showTime formats t in the commands' zone, with its offset; the zero time
// prints as "-".
func showTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(showZone()).Format(timeLayout)
}

// zoneName says the zone in prose ("UTC+08:00").
func zoneName() string {
	_, off := time.Now().In(showZone()).Zone()
	if off == 0 {
		return "UTC"
	}
	return "UTC" + time.Unix(0, 0).In(time.FixedZone("", off)).Format("-07:00")
}

// parseWhen reads a time flag: RFC 3339, or "YYYY-MM-DD[ hh:mm:ss]" in the
// commands' zone. flag names the flag in the error.
func parseWhen(flag, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{time.DateTime, "2006-01-02 15:04", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, showZone()); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q: want YYYY-MM-DD, \"YYYY-MM-DD hh:mm:ss\" (%s, see $%s) or RFC 3339",
		flag, s, zoneName(), envTZ)
}

// logZone makes the server log stamp its lines in the commands' zone
// (RFC 3339 with the offset), so a log line and a table row compare.
func logZone(z *time.Location) func(groups []string, a slog.Attr) slog.Attr {
	return func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
			return slog.String(slog.TimeKey, a.Value.Time().In(z).Format(time.RFC3339Nano))
		}
		return a
	}
}
