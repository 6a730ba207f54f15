package viewmodel

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// A feed item and an inspector row read only the start of a long value;
// what they show is the same as if they had read it whole.
func TestExcerptsReadOnlyTheStartOfALongValue(t *testing.T) {
	long := func(prefix string) json.RawMessage {
		return mustJSON(prefix + strings.Repeat("x", 16000))
	}
	values := []json.RawMessage{
		mustJSON("short"), mustJSON(""), json.RawMessage(`42`), json.RawMessage(`null`),
		json.RawMessage(`{"a":[1,2,3],"b":"` + strings.Repeat("y", 500) + `"}`),
		long(""), long("é"), long(strings.Repeat("😀", 30)), long(strings.Repeat("\"\\\n", 50)),
		long(strings.Repeat("\u2028", 60)), long(strings.Repeat("<&>", 40)),
	}
	// Escapes cut at every byte of the first bytes read.
	for i := range 14 {
		values = append(values, mustJSON(strings.Repeat("a", 230+i)+strings.Repeat("😀\"\x01", 4)+strings.Repeat("z", 1000)))
	}
	for _, v := range values {
		if got, want := excerpt(v), cutRunes(DisplayText(v), 40); got != want {
			t.Errorf("excerpt(%.60s…) = %q, want %q", v, got, want)
		}
		row := inspected(store.Entry{Key: "k", Value: v}, views.Origin{})
		whole := []rune(string(v))
		want := string(v)
		if len(whole) > inspectorCut {
			want = string(whole[:inspectorCut])
		}
		if row.JSON != want || row.Long != (len(whole) > inspectorCut) {
			t.Errorf("row of %.60s…: %q (long %v), want %q", v, row.JSON, row.Long, want)
		}
	}
}

// mustJSON is v's JSON as the handlers write it: <, > and & as they are.
func mustJSON(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
