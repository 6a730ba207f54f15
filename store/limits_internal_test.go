package store

import (
	"bytes"
	"testing"
)

// TestScalarsParseAsWalked: ParseValue's short way for a string, number,
// bool or null stores and refuses what walking the value's tokens does.
func TestScalarsParseAsWalked(t *testing.T) {
	for _, v := range []string{`"text"`, ` 1 `, "\t-0.5e10\n", `1e400`, `-1e-400`, `true`, `false`, `null`, `"\u2028<&>"`,
		`"é \"quoted\" \\ \/"`, `0`, `123456789012345678901234567890`, `"\ud800"`} {
		got, gotErr := DefaultLimits.ParseValue([]byte(v))
		want, wantErr := DefaultLimits.walk([]byte(v))
		if !bytes.Equal(got, want) || (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Errorf("ParseValue(%s) = %s, %v; walking its tokens: %s, %v", v, got, gotErr, want, wantErr)
		}
	}
}
