package store

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// With -redis-wait N a write is acknowledged only once N replicas have it.
// WAIT counts the writes of its own connection, so a script and its WAIT
// must share one. Concurrent writes to one primary share it too: a round
// sends every script waiting, then one WAIT, down one connection, as
// SQLite's writer groups commits; the writes that come meanwhile go in the
// next round.

// replicated is the scripts waiting for one primary's next round.
type replicated struct {
	mu      sync.Mutex
	queue   []*waitingScript
	sending bool
}

// waitingScript is one write waiting for its round.
type waitingScript struct {
	sc   *luaScript
	keys []string
	args []any
	cmd  *redis.Cmd    // its answer, once done is closed
	wait *redis.IntCmd // its round's WAIT
	done chan struct{} // closed once cmd and wait are answered
	turn chan struct{} // this write is to send the next round
}

// replicatedRun runs a writing script on primary (host:port node) in the
// next round of that primary's writes, and returns it with its round's
// WAIT. A round is sent by the first write in it, which then passes the
// turn to the first write of the next: nobody sends more than one round.
func (s *Redis) replicatedRun(primary *redis.Client, node string, sc *luaScript, keys []string, args []any) (*redis.Cmd, *redis.IntCmd) {
	r, ok := s.rounds.Load(node)
	if !ok {
		r, _ = s.rounds.LoadOrStore(node, &replicated{})
	}
	rounds := r.(*replicated)
	w := &waitingScript{sc: sc, keys: keys, args: args, done: make(chan struct{}), turn: make(chan struct{}, 1)}
	rounds.mu.Lock()
	rounds.queue = append(rounds.queue, w)
	if !rounds.sending {
		rounds.sending = true
		w.turn <- struct{}{}
	}
	rounds.mu.Unlock()
	select {
	case <-w.done:
		return w.cmd, w.wait
	case <-w.turn:
	}
	rounds.mu.Lock()
	round := rounds.queue // w among them
	rounds.queue = nil
	rounds.mu.Unlock()
	s.sendRound(primary, round)
	rounds.mu.Lock()
	if len(rounds.queue) > 0 {
		rounds.queue[0].turn <- struct{}{}
	} else {
		rounds.sending = false
	}
	rounds.mu.Unlock()
	return w.cmd, w.wait
}

// sendRound sends a round's scripts, then WAIT, down one connection, and
// tells each script its answer. A script the primary does not know yet (a
// new primary, a restart) did not run: those are sent again as source, with
// a WAIT of their own.
func (s *Redis) sendRound(primary *redis.Client, round []*waitingScript) {
	for eval := false; len(round) > 0; eval = true {
		var wait *redis.IntCmd
		ctx := context.Background() // the round is shared: one request's end must not cut the others'
		primary.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, w := range round {
				cmd := w.sc.writing(ctx, eval, w.keys, w.args)
				w.cmd = cmd.Cmd
				p.Process(ctx, cmd)
			}
			wait = redis.NewIntCmd(ctx, "wait", s.wait, redisWaitTimeout.Milliseconds())
			return p.Process(ctx, wait)
		})
		var again []*waitingScript
		for _, w := range round {
			w.wait = wait
			if !eval && redis.HasErrorPrefix(w.cmd.Err(), "NOSCRIPT") {
				again = append(again, w)
				continue
			}
			close(w.done)
		}
		round = again
	}
}

// waitErr is the error of a script that ran, given its round's WAIT.
func (s *Redis) waitErr(wait *redis.IntCmd, node string) error {
	switch {
	case wait.Err() != nil:
		return fmt.Errorf("wait for %d replicas: %w", s.wait, redisFault(wait.Err()))
	case wait.Val() < int64(s.wait):
		s.metrics.RedisError(node)
		return fmt.Errorf("%w: %d of %d replicas within %s", ErrNoReplica, wait.Val(), s.wait, redisWaitTimeout)
	}
	return nil
}
