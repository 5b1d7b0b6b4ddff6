package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// debugStats is what startStats writes each second: enough for the fault campaign and
// the soak (e2e/faults_test.go, `just soak`) to see goroutine and memory growth, which
// /proc does not show.
type debugStats struct {
	PID        int       `json:"pid"`
	Time       time.Time `json:"time"`
	Goroutines int       `json:"goroutines"`
	HeapInuse  uint64    `json:"heap_inuse"`
	// HeapLive is the heap that survived the latest collection: the figure to watch
	// for a leak (HeapInuse swings with the garbage between collections).
	HeapLive uint64 `json:"heap_live"`
	Sys      uint64 `json:"sys"`
}

// statsInterval is how often startStats writes.
const statsInterval = time.Second

// startStats, when TETHER_DEBUG_STATS=DIR is set (tests and `just soak` only), writes
// this process's goroutine count and heap to DIR/tether-COMMAND-PID.json and its
// goroutine stacks to DIR/tether-COMMAND-PID.goroutines every second (0600 files,
// replaced whole). No listener, nothing when unset. The returned function stops it.
func startStats(args []string) func() {
	dir := os.Getenv("TETHER_DEBUG_STATS")
	if dir == "" {
		return func() {}
	}
	cmd := "none"
	if len(args) > 0 {
		cmd = filepath.Base(args[0])
	}
	base := filepath.Join(dir, fmt.Sprintf("tether-%s-%d", cmd, os.Getpid()))
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(statsInterval)
		defer t.Stop()
		for {
			writeStats(base)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(stop); <-done }
}

func writeStats(base string) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	s := debugStats{PID: os.Getpid(), Time: time.Now().UTC(), Goroutines: runtime.NumGoroutine(), HeapInuse: m.HeapInuse, Sys: m.Sys}
	if live[0].Value.Kind() == metrics.KindUint64 {
		s.HeapLive = live[0].Value.Uint64()
	}
	b, _ := json.Marshal(s)
	replaceFile(base+".json", func(f *os.File) error { _, err := f.Write(b); return err })
	replaceFile(base+".goroutines", func(f *os.File) error { return pprof.Lookup("goroutine").WriteTo(f, 1) })
}

// replaceFile writes path through a temporary file and a rename, so a reader never
// sees half of it. Errors are dropped: this is a test aid.
func replaceFile(path string, write func(*os.File) error) {
	f, err := os.OpenFile(path+".tmp", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	err = write(f)
	if cerr := f.Close(); err == nil && cerr == nil {
		os.Rename(path+".tmp", path)
	}
}
