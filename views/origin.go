package views

import (
	"fmt"
	"time"
)

// Who is how an origin reads: "by this tab", "by Tab 3", "by another
// browser", "through the API".
func (o Origin) Who() string {
	switch o.Kind {
	case "this-tab":
		return "by this tab"
	case "other-tab":
		if o.TabName == "" {
			return "by another tab of this browser"
		}
		return "by " + o.TabName
	case "other-browser":
		return "by another browser"
	case "api":
		return "through the API"
	case "unknown":
		return "by someone"
	}
	return ""
}

// Ago is how long ago the value changed, as a person says it: "just now",
// "12 s ago", "3 min ago"; the page's script keeps it current.
func (o Origin) Ago() string { return Ago(o.Now.Sub(o.At)) }

// Ago writes a duration the way the page shows how long ago something was.
// static/app.js writes it the same way as time goes on.
func Ago(d time.Duration) string {
	switch {
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func fmtMillis(t time.Time) string { return fmtInt(t.UnixMilli()) }
