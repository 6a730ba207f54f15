package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// parseField splits a stored field, "version ms @origin json" (or, from
// before provenance, "version ms json"), into its entry.
func parseField(key, raw string) (Entry, error) {
	ver, rest, ok1 := strings.Cut(raw, " ")
	at, value, ok2 := strings.Cut(rest, " ")
	v, err1 := strconv.ParseInt(ver, 10, 64)
	ms, err2 := strconv.ParseInt(at, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		return Entry{}, fmt.Errorf("malformed field %q", key)
	}
	e := Entry{Key: key, Version: v, UpdatedAt: time.UnixMilli(ms)}
	if token, json, ok := strings.Cut(value, " "); ok && strings.HasPrefix(token, "@") {
		value = json
		kind, rest, _ := strings.Cut(token[1:], ":")
		tab, user, _ := strings.Cut(rest, ":")
		e.Origin.UserID, e.Origin.API = user, kind == "a"
		e.Origin.Tab, _ = strconv.Atoi(tab)
	}
	e.Value = json.RawMessage(value)
	return e, nil
}

// List returns every key of owner, sorted, with the sequence of the moment:
// from the cache once the change stream has brought it up to this
// instance's last acknowledged write, else read (and cached if it can be).
func (s *Redis) List(ctx context.Context, o Owner) (Snapshot, error) {
	if snap, ok := s.cached(ctx, o); ok {
		return snap, nil
	}
	since := s.cache.readStart()
	snap, err := s.list(ctx, o)
	if err != nil {
		return Snapshot{}, err
	}
	s.cache.fill(o, snap, since)
	return snap, nil
}

// View returns what w shows of owner, as List reads it.
func (s *Redis) View(ctx context.Context, o Owner, w Window) (View, error) {
	if s.waitForMyWrites(ctx, o) {
		if v, ok := s.cache.view(o, w); ok {
			return v, nil
		}
	}
	since := s.cache.readStart()
	snap, err := s.list(ctx, o)
	if err != nil {
		return View{}, err
	}
	s.cache.fill(o, snap, since)
	return snap.View(w), nil
}

func (s *Redis) list(ctx context.Context, o Owner) (Snapshot, error) {
	keys := []string{s.ownerKey(o)}
	if s.cluster {
		keys = append(keys, s.prefixOf(o)+"seq") // see declared
	}
	res, err := s.whileSlotMoves(ctx, func() *redis.Cmd { return listScript.Run(ctx, s.ap, keys, s.prefixOf(o)) }).Slice()
	if err != nil {
		return Snapshot{}, fmt.Errorf("list %s: %w", o, err)
	}
	var snap Snapshot
	snap.Version, _ = strconv.ParseInt(fmt.Sprint(res[0]), 10, 64)
	pairs, _ := res[1].([]any)
	for i := 0; i+1 < len(pairs); i += 2 {
		e, err := parseField(fmt.Sprint(pairs[i]), fmt.Sprint(pairs[i+1]))
		if err != nil {
			return Snapshot{}, fmt.Errorf("list %s: %w", o, err)
		}
		snap.Entries = append(snap.Entries, e)
	}
	sortEntries(snap.Entries)
	return snap, nil
}

// Get returns one key of owner, or ErrNotFound.
func (s *Redis) Get(ctx context.Context, o Owner, key string) (Entry, error) {
	if snap, ok := s.cached(ctx, o); ok {
		if i, found := search(snap.Entries, key); found {
			return snap.Entries[i], nil
		}
		return Entry{}, ErrNotFound
	}
	return s.get(ctx, o, key)
}

// get reads one key of owner from Redis.
func (s *Redis) get(ctx context.Context, o Owner, key string) (Entry, error) {
	raw, err := s.ap.HGet(ctx, s.ownerKey(o), key).Result()
	if errors.Is(err, redis.Nil) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, fmt.Errorf("get %s/%s: %w", o, key, err)
	}
	return parseField(key, raw)
}

// Apply runs several sets and increments as one atomic script. On a
// cluster the mutations of different slots (the general scope and a user's)
// run as one script per slot, in the order they first appear: each is
// atomic, the whole no longer is.
func (s *Redis) Apply(ctx context.Context, origin Origin, muts ...Mutation) ([]Entry, error) {
	if err := s.limits.Check(muts...); err != nil {
		return nil, err
	}
	if !s.cluster || len(muts) == 1 {
		return s.applySlot(ctx, origin, muts) // one Redis, or one owner: one slot
	}
	var slots []string
	bySlot := map[string][]int{}
	for i, m := range muts {
		p := s.prefixOf(m.Owner)
		if _, ok := bySlot[p]; !ok {
			slots = append(slots, p)
		}
		bySlot[p] = append(bySlot[p], i)
	}
	if len(slots) == 1 {
		return s.applySlot(ctx, origin, muts)
	}
	entries := make([]Entry, len(muts))
	for _, p := range slots {
		part := make([]Mutation, len(bySlot[p]))
		for j, i := range bySlot[p] {
			part[j] = muts[i]
		}
		done, err := s.applySlot(ctx, origin, part)
		if err != nil {
			return nil, err
		}
		for j, i := range bySlot[p] {
			entries[i] = done[j]
		}
	}
	return entries, nil
}

// applySlot runs mutations of one slot's owners as one script.
func (s *Redis) applySlot(ctx context.Context, origin Origin, muts []Mutation) ([]Entry, error) {
	who, err := s.originArgs(ctx, origin, muts[0].Owner)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(muts))
	args := append(s.common(s.prefixOf(muts[0].Owner)), s.limits.KeysPerOwner)
	args = append(append(args, who...), len(muts))
	for i, m := range muts {
		keys[i] = s.ownerKey(m.Owner)
		kind := "s"
		if m.Increment {
			kind = "i"
		}
		args = append(args, string(m.Owner.Scope), m.Owner.UserID, m.Owner.TabID, m.Key, kind, string(m.Value), ifArg(m.IfVersion))
	}
	start := time.Now()
	res, err := s.run(ctx, applyScript, s.declared(keys, muts[0].Owner, originTab(origin, muts[0].Owner)), args...).Slice()
	s.metrics.Commit(1, time.Since(start))
	if err != nil {
		if i := conflictIndex(err); i >= 0 && i < len(muts) {
			return nil, s.conflict(ctx, err, muts[i].Owner, muts[i].Key)
		}
		return nil, redisErr(err)
	}
	if len(res) != len(muts)+2 {
		return nil, fmt.Errorf("apply: unexpected answer %v", res)
	}
	seq, err := strconv.ParseInt(fmt.Sprint(res[len(muts)+1]), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("apply: sequence %v: %w", res[len(muts)+1], err)
	}
	for _, m := range muts {
		s.answered(m.Owner, seq)
	}
	s.countTabWrite(origin)
	for _, m := range muts {
		if m.Owner.Scope != General {
			s.touched.countWrite(m.Owner.UserID)
		}
	}
	tab, _ := res[0].(int64)
	kept := Origin{UserID: origin.UserID, Tab: int(tab), API: origin.API}
	now := time.UnixMilli(args[1].(int64)) // the time the script stored
	entries := make([]Entry, len(muts))
	for i, r := range res[1 : len(muts)+1] {
		pair, _ := r.([]any)
		if len(pair) != 3 {
			return nil, fmt.Errorf("apply: unexpected answer %v", r)
		}
		version, err := strconv.ParseInt(fmt.Sprint(pair[0]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("apply: version %v: %w", pair[0], err)
		}
		made, _ := pair[2].(int64)
		entries[i] = Entry{Key: muts[i].Key, Version: version, Value: json.RawMessage(fmt.Sprint(pair[1])), UpdatedAt: now,
			Origin: kept, Created: made == 1}
	}
	return entries, nil
}

// conflictIndex is the mutation a CONFLICT refusal names (from 0), or -1.
func conflictIndex(err error) int {
	_, after, ok := strings.Cut(err.Error(), "CONFLICT ")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(strings.TrimSpace(after))
	if err != nil {
		return -1
	}
	return i - 1
}

// Delete removes key from owner, or returns ErrNotFound; with ifVersion,
// only at that version.
func (s *Redis) Delete(ctx context.Context, o Owner, key string, origin Origin, ifVersion int64) (int64, error) {
	who, err := s.originArgs(ctx, origin, o)
	if err != nil {
		return 0, fmt.Errorf("delete %s/%s: %w", o, key, err)
	}
	args := append(s.common(s.prefixOf(o)), string(o.Scope), o.UserID, o.TabID, key)
	args = append(append(args, who...), ifArg(ifVersion))
	start := time.Now()
	version, err := s.run(ctx, deleteScript, s.declared([]string{s.ownerKey(o)}, o, originTab(origin, o)), args...).Int64()
	s.metrics.Commit(1, time.Since(start))
	if err != nil {
		return 0, fmt.Errorf("delete %s/%s: %w", o, key, s.conflict(ctx, err, o, key))
	}
	s.countTabWrite(origin)
	if version == 0 {
		return 0, fmt.Errorf("delete %s/%s: %w", o, key, ErrNotFound)
	}
	s.answered(o, version)
	return version, nil
}

// Clear removes every key of owner and returns how many there were.
func (s *Redis) Clear(ctx context.Context, o Owner, origin Origin) (int, int64, error) {
	who, err := s.originArgs(ctx, origin, o)
	if err != nil {
		return 0, 0, fmt.Errorf("clear %s: %w", o, err)
	}
	args := append(s.common(s.prefixOf(o)), string(o.Scope), o.UserID, o.TabID)
	args = append(args, who...)
	start := time.Now()
	res, err := s.run(ctx, clearScript, s.declared([]string{s.ownerKey(o)}, o, originTab(origin, o)), args...).Int64Slice()
	s.metrics.Commit(1, time.Since(start))
	if err != nil || len(res) != 2 {
		return 0, 0, fmt.Errorf("clear %s: %w %v", o, err, res)
	}
	s.answered(o, res[1])
	s.countTabWrite(origin)
	return int(res[0]), res[1], nil
}

// CopyTab copies one tab's keys to a new, empty tab of the same user.
func (s *Redis) CopyTab(ctx context.Context, userID, fromTab, toTab string) error {
	args := append(s.common(s.prefixOf(UserOwner(userID))), userID, toTab)
	keys := []string{s.ownerKey(TabOwner(userID, fromTab)), s.ownerKey(TabOwner(userID, toTab))}
	seq, err := s.run(ctx, copyScript, s.declared(keys, UserOwner(userID)), args...).Int64()
	if err != nil {
		return fmt.Errorf("copy tab %s to %s: %w", fromTab, toTab, redisErr(err))
	}
	s.answered(TabOwner(userID, toTab), seq)
	s.touched.countWrite(userID)
	return nil
}

// countTabWrite tells the touches that a write by origin may have made its user:
// a page's write numbers its tab, which makes the user (origin_of in
// lua/prelude.lua); a write through the API makes none.
func (s *Redis) countTabWrite(origin Origin) {
	if !origin.API && origin.TabID != "" {
		s.touched.countWrite(origin.UserID)
	}
}

// TabNumber returns the number of a tab in its browser, numbering it only
// the first time it is seen.
func (s *Redis) TabNumber(ctx context.Context, userID, tabID string) (int, error) {
	var gen uint64
	if s.mine.wait(ctx, s.streamOf(UserOwner(userID)), streamWait) { // evictions by this instance's writes are known
		var n int
		var ok bool
		if n, ok, gen = s.tabNumbers.get(userID, tabID); ok {
			return n, nil
		}
	}
	user := UserOwner(userID)
	n, err := s.ap.HGet(ctx, s.prefixOf(user)+"tn:"+userID, tabID).Int()
	if err == nil {
		s.tabNumbers.put(userID, tabID, n, gen)
		return n, nil
	}
	if !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("tab number: %w", err)
	}
	if n, err = s.run(ctx, tabScript, s.declared([]string{s.ownerKey(user)}, user, tabID), append(s.common(s.prefixOf(user)), userID, tabID)...).Int(); err != nil {
		return 0, fmt.Errorf("tab number: %w", err)
	}
	s.touched.countWrite(userID)
	s.tabNumbers.put(userID, tabID, n, gen)
	return n, nil
}
