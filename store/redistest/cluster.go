package redistest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a real Redis Cluster on loopback: three primaries and three
// replicas, each a redis-server of its own with AOF on. Its nodes take over
// from one another as a production cluster's do: a primary killed with
// kill -9 is replaced by its replica within a couple of seconds.
type Cluster struct {
	// URL is go-redis's cluster form: redis://node1?addr=node2&addr=….
	URL   string
	Nodes []*Server

	primaries int // how many primaries serve the slots: 3, more once grown
	dir       string
}

// Cluster timing: a node unreachable for clusterNodeTimeout is failed
// over. cluster-replica-validity-factor 0 lets a replica take over however
// long its primary was idle (else one of an idle primary refuses, and the
// cluster stays down).
const clusterNodeTimeout = 1000 // ms

// StartCluster starts a six-node cluster of its own in temp folders, stops
// it when the test ends, and returns it once every slot is served. Without
// redis-server and redis-cli the test skips, unless REDIS_REQUIRED=1 (CI).
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			msg := bin + " not found: install it with `apt-get install -y redis-server` to run the Redis Cluster tests"
			if os.Getenv("REDIS_REQUIRED") == "1" {
				tb.Fatal(msg + " (REDIS_REQUIRED=1)")
			}
			tb.Skip(msg)
		}
	}
	c, err := NewCluster(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Kill)
	return c
}

// NewCluster is StartCluster outside a test: six nodes with their files in
// folders under dir. Kill stops them.
func NewCluster(dir string) (*Cluster, error) {
	c := &Cluster{primaries: 3, dir: dir}
	for range 6 {
		if _, err := c.startNode(); err != nil {
			c.Kill()
			return nil, err
		}
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		args = append(args, n.addr)
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		c.Kill()
		return nil, fmt.Errorf("redis-cli --cluster create: %w: %s", err, out)
	}
	c.URL = "redis://" + c.Nodes[0].addr
	for _, n := range c.Nodes[1:] {
		c.URL += map[bool]string{true: "?", false: "&"}[n == c.Nodes[1]] + "addr=" + n.addr
	}
	if err := c.WaitHealthy(30 * time.Second); err != nil {
		c.Kill()
		return nil, err
	}
	return c, nil
}

// startNode starts one more node, in cluster mode, that serves nothing yet.
func (c *Cluster) startNode() (*Server, error) {
	addr, err := clusterAddr()
	if err != nil {
		return nil, err
	}
	node := &Server{URL: "redis://" + addr, addr: addr, dir: filepath.Join(c.dir, "node"+strconv.Itoa(len(c.Nodes))),
		args: []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(clusterNodeTimeout), "--cluster-replica-validity-factor", "0"}}
	if err := os.MkdirAll(node.dir, 0o755); err != nil {
		return nil, err
	}
	if err := node.Restart(); err != nil {
		return nil, err
	}
	c.Nodes = append(c.Nodes, node)
	return node, nil
}

// Grow adds a primary and its replica to the cluster, as an operator does
// to outgrow it (redis-cli --cluster add-node, then reshard): it moves slots
// of the other primaries to the new one, one key per MIGRATE (so that a
// slot is often split between the two nodes, as a slot of many keys is),
// while the cluster serves, and returns once the cluster is healthy.
func (c *Cluster) Grow(slots int) (*Server, error) {
	primary, id, err := c.addNode()
	if err != nil {
		return nil, err
	}
	replica, _, err := c.addNode("--cluster-slave", "--cluster-master-id", id)
	if err != nil {
		return nil, err
	}
	if err := replica.WaitInSync(30 * time.Second); err != nil {
		return nil, err
	}
	c.primaries++
	if out, err := exec.Command("redis-cli", "--cluster", "reshard", c.Nodes[0].addr, "--cluster-from", "all",
		"--cluster-to", id, "--cluster-slots", strconv.Itoa(slots), "--cluster-pipeline", "1", "--cluster-yes").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster reshard: %w: %s", err, tail(out))
	}
	return primary, c.WaitHealthy(30 * time.Second)
}

// addNode starts a node and joins it to the cluster (redis-cli --cluster
// add-node, with opts), and returns it and its id once every node knows it.
func (c *Cluster) addNode(opts ...string) (*Server, string, error) {
	node, err := c.startNode()
	if err != nil {
		return nil, "", err
	}
	args := append([]string{"--cluster", "add-node", node.addr, c.Nodes[0].addr}, opts...)
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("redis-cli --cluster add-node %s: %w: %s", strings.Join(opts, " "), err, out)
	}
	id, err := node.cli("cluster", "myid")
	if err != nil {
		return nil, "", err
	}
	return node, id, c.waitKnown(id)
}

// waitKnown waits until every running node lists the node id in its
// CLUSTER NODES (a reshard, or a replica's joining, needs it).
func (c *Cluster) waitKnown(id string) error {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		known := true
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			if out, err := n.cli("cluster", "nodes"); err != nil || !strings.Contains(out, id) {
				known = false
			}
		}
		if known {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not every node knew node %s within 30 s", id)
		}
	}
}

// tail is the end of a command's long output, for an error.
func tail(out []byte) []byte {
	if len(out) > 2000 {
		return out[len(out)-2000:]
	}
	return out
}

// clusterAddr is a free loopback address whose port's cluster bus port
// (port + 10000) is free too.
func clusterAddr() (string, error) {
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := ln.Addr().(*net.TCPAddr)
		ln.Close()
		if addr.Port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", addr.Port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return addr.String(), nil
	}
	return "", fmt.Errorf("no free port with a free cluster bus port")
}

// cli runs redis-cli against node and returns what it printed.
func (s *Server) cli(args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(s.addr)
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).Output()
	return string(bytes.TrimSpace(out)), err
}

// Addr is the node's host:port.
func (s *Server) Addr() string { return s.addr }

// Running says the node's process is up (it has not been killed).
func (s *Server) Running() bool { return s.cmd != nil }

// Primaries are the running nodes that serve slots now, as the first
// running node sees the cluster.
func (c *Cluster) Primaries() ([]*Server, error) {
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		out, err := n.cli("cluster", "nodes")
		if err != nil {
			continue
		}
		var primaries []*Server
		for line := range strings.Lines(out) {
			f := strings.Fields(line)
			// id addr@bus flags master-id ping pong epoch state slots…
			if len(f) < 8 || !strings.Contains(f[2], "master") || strings.Contains(f[2], "fail") || len(f) < 9 {
				continue
			}
			addr, _, _ := strings.Cut(f[1], "@")
			for _, m := range c.Nodes {
				if m.addr == addr && m.Running() {
					primaries = append(primaries, m)
				}
			}
		}
		return primaries, nil
	}
	return nil, fmt.Errorf("no node of the cluster answers")
}

// ReplicaOf is the running node that replicates primary, or nil.
func (c *Cluster) ReplicaOf(primary *Server) (*Server, error) {
	out, err := primary.cli("cluster", "nodes")
	if err != nil {
		return nil, err
	}
	var id string
	lines := strings.Split(out, "\n")
	for _, line := range lines {
		if f := strings.Fields(line); len(f) > 2 && strings.Contains(f[2], "myself") {
			id = f[0]
		}
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.Contains(f[2], "slave") || f[3] != id {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		for _, n := range c.Nodes {
			if n.addr == addr && n.Running() {
				return n, nil
			}
		}
	}
	return nil, fmt.Errorf("no running replica of %s", primary.addr)
}

// WaitHealthy waits until every running node says the cluster is ok (every
// slot served) and all its running primaries serve them.
func (c *Cluster) WaitHealthy(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		ok := true
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			out, err := n.cli("cluster", "info")
			if err != nil || !strings.Contains(out, "cluster_state:ok") {
				ok = false
				break
			}
		}
		if ok {
			if p, err := c.Primaries(); err == nil && len(p) == c.primaries {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the Redis Cluster was not healthy within %s", wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitReplicated waits until every primary has a running replica that has
// caught up with it.
func (c *Cluster) WaitReplicated(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		primaries, err := c.Primaries()
		ok := err == nil && len(primaries) == c.primaries
		for _, p := range primaries {
			r, err := c.ReplicaOf(p)
			if err != nil || r.WaitInSync(0) != nil {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not every primary of the Redis Cluster had a replica within %s", wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FailOver kills a primary with kill -9 (the round-th, counting round
// robin), once every primary has its replica, and calls atKill (if set) at
// that moment. With lag, its replica is frozen for that long first, so that
// it falls behind. It returns when the replica has taken over, with the
// killed node started again (it rejoins as a replica), and the moment of
// the kill.
func (c *Cluster) FailOver(round int, lag time.Duration, atKill func()) (time.Time, error) {
	if err := c.WaitReplicated(30 * time.Second); err != nil {
		return time.Time{}, err
	}
	primaries, err := c.Primaries()
	if err != nil {
		return time.Time{}, err
	}
	victim := primaries[round%len(primaries)]
	replica, err := c.ReplicaOf(victim)
	if err != nil {
		return time.Time{}, err
	}
	if lag > 0 {
		replica.Pause() // the copies wait in the primary
		time.Sleep(lag)
	}
	victim.Kill()
	killed := time.Now()
	if atKill != nil {
		atKill()
	}
	replica.Resume()
	if err := c.WaitHealthy(30 * time.Second); err != nil {
		return killed, err
	}
	return killed, victim.Restart()
}

// Kill stops every node at once.
func (c *Cluster) Kill() {
	for _, n := range c.Nodes {
		n.Kill()
	}
}

// Keys is how many keys the node holds (DBSIZE), or -1 if it does not answer.
func (s *Server) Keys() int {
	out, err := s.cli("dbsize")
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(out)
	if err != nil {
		return -1
	}
	return n
}
