package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// While the live heap is small the collector waits for 32 MiB of heap, not
// 3x a few MiB; the setting follows every collection.
func TestHeapGoalStaysAtLeastTheFloor(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	const floor = 32 << 20
	keepHeapGoalAtLeast(floor)
	goal := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC() // runs the finalizer that sets GOGC, then one under it
		runtime.GC()
		metrics.Read(goal)
		if goal[0].Value.Uint64() >= floor {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("heap goal %d MiB after collections, want at least %d", goal[0].Value.Uint64()>>20, floor>>20)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
