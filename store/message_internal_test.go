package store

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A message comes out of the wire as it went in, whatever its key and value
// hold, with versions beyond a double's exact range.
func TestMessageRoundTrip(t *testing.T) {
	for _, m := range []message{
		{Scope: User, UserID: "u1", Key: `a "key" with spaces/and:colons`, Op: OpSet, Version: 1<<53 + 1, At: 1796165835194,
			OriginUser: "u1", OriginTab: 7, ClientID: "00000000-0000-4000-8000-000000000001",
			Value: json.RawMessage(`{"text":"line\nbreak, \"quotes\", \u2603 and a tab\t","n":[1,2.5e3,null,true]}`)},
		{Scope: Tab, UserID: "u1", TabID: "t1", Op: opEvict, Version: 42, At: 1},
		{Scope: Browser, UserID: "u2", Op: OpClear, Version: 3, OriginAPI: true, Value: json.RawMessage(`{"s":3,"e":{}}`)},
		{Op: OpPresence, ClientID: "instance-a"},
	} {
		got, err := decodeMessage(m.encode())
		if err != nil {
			t.Fatalf("decode %+v: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip: got %+v, want %+v", got, m)
		}
	}
}

// What is not a message of this format is refused with a clear error,
// never half read.
func TestMessageRefusesOtherPayloads(t *testing.T) {
	good := message{Scope: General, Key: "k", Op: OpSet, Version: 9, Value: json.RawMessage(`1`)}.encode()
	for name, payload := range map[string]string{
		"JSON of an older version": `{"s":"general","k":"k","o":"set","v":"9"}`,
		"too few fields":           strings.Join(strings.Split(good, wireSep)[:12], wireSep),
		"another format":           "2" + good[1:],
		"a version that is text":   strings.Replace(good, wireSep+"9"+wireSep, wireSep+"nine"+wireSep, 1),
		"empty":                    "",
	} {
		if m, err := decodeMessage(payload); err == nil {
			t.Errorf("%s: decoded as %+v, want an error", name, m)
		}
	}
}

// jsonMessage is the JSON form messages had before, to compare against.
type jsonMessage struct {
	Scope      Scope  `json:"s"`
	UserID     string `json:"u,omitempty"`
	TabID      string `json:"t,omitempty"`
	Key        string `json:"k,omitempty"`
	Op         Op     `json:"o"`
	Version    int64  `json:"v,string"`
	At         int64  `json:"at,string,omitempty"`
	OriginUser string `json:"ou,omitempty"`
	OriginTab  int    `json:"on,omitempty"`
	OriginAPI  bool   `json:"oa,omitempty"`
	ClientID   string `json:"g,omitempty"`
	ValueText  string `json:"xs,omitempty"`
}

// BenchmarkDecodeMessage decodes a typical set as every instance does for
// every change; .../json is the same message as JSON (the format before),
// measured alongside.
func BenchmarkDecodeMessage(b *testing.B) {
	m := message{Scope: User, UserID: "6cb07a4600895f17d7688318bd468150", Key: "user_note", Op: OpSet, Version: 123456,
		At: 1796165835194, OriginUser: "6cb07a4600895f17d7688318bd468150", OriginTab: 3,
		ClientID: "00000000-0000-4000-8000-000000000001", Value: json.RawMessage(`"note 1234"`)}
	wire := m.encode()
	b.Run("wire", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeMessage(wire); err != nil {
				b.Fatal(err)
			}
		}
	})
	asJSON, _ := json.Marshal(jsonMessage{Scope: m.Scope, UserID: m.UserID, Key: m.Key, Op: m.Op, Version: m.Version, At: m.At,
		OriginUser: m.OriginUser, OriginTab: m.OriginTab, ClientID: m.ClientID, ValueText: string(m.Value)})
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			var j jsonMessage
			if err := json.Unmarshal(asJSON, &j); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A write's message may come back on the stream before the write's answer
// does: the write is not then waited for, by this read or any later one
// (else, with no further change, every read of its stream would wait and
// go to Redis).
func TestAWriteHeardBeforeItsAnswerIsNotWaitedFor(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		s := &Redis{cluster: cluster, prefix: "scopes:"}
		o := UserOwner("u")
		s.heard(Change{Owner: o, Op: OpSet, Key: "k", Version: 5})
		s.answered(o, 5)
		if !s.mine.wait(context.Background(), s.streamOf(o), time.Millisecond) {
			t.Errorf("cluster %v: a write whose message came first is waited for", cluster)
		}
		s.answered(o, 6) // a later one, whose message is still to come
		if s.mine.wait(context.Background(), s.streamOf(o), time.Millisecond) {
			t.Errorf("cluster %v: a write whose message has not come is not waited for", cluster)
		}
		s.heard(Change{Owner: o, Op: OpSet, Key: "k", Version: 6})
		if !s.mine.wait(context.Background(), s.streamOf(o), time.Millisecond) {
			t.Errorf("cluster %v: a write is waited for after its message came", cluster)
		}
	}
}
