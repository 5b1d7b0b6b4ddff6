package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// startProfile, when TETHER_PPROF=DIR is set (for `just bench --pprof DIR`), writes
// this process's CPU profile to DIR/tether-COMMAND-PID.prof and, when it stops, its
// heap profile (what was allocated where: the sources of garbage too) to
// DIR/tether-COMMAND-PID.heap and the Go runtime's memory at its peak, by class, to
// DIR/tether-COMMAND-PID.mem.json (what makes the peak RSS). The returned function
// stops it; it does nothing when profiling is off or could not start.
func startProfile(args []string) func() {
	dir := os.Getenv("TETHER_PPROF")
	if dir == "" {
		return func() {}
	}
	cmd := "none"
	if len(args) > 0 {
		cmd = filepath.Base(args[0])
	}
	base := filepath.Join(dir, fmt.Sprintf("tether-%s-%d", cmd, os.Getpid()))
	f, err := os.OpenFile(base+".prof", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tether: TETHER_PPROF: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		fmt.Fprintf(os.Stderr, "tether: TETHER_PPROF: %v\n", err)
		return func() {}
	}
	stopPeak := samplePeak()
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		peak := stopPeak()
		if b, err := json.MarshalIndent(peak, "", "  "); err == nil {
			os.WriteFile(base+".mem.json", append(b, '\n'), 0o600)
		}
		if h, err := os.OpenFile(base+".heap", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err == nil {
			pprof.Lookup("heap").WriteTo(h, 0)
			h.Close()
		}
	}
}

// memPeak is the Go runtime's memory when it held the most (not counting what it
// returned to the OS), by runtime/metrics class, in bytes; the rest of the RSS is the
// binary's pages and the C side.
type memPeak struct {
	Time     time.Time         `json:"time"`
	Held     uint64            `json:"held"`
	Classes  map[string]uint64 `json:"classes"`
	GCs      uint64            `json:"gcs"`
	HeapGoal uint64            `json:"heap_goal"`
	// HeapLive is what survived the latest collection before the peak: the data
	// the process held on to, the rest of the heap being garbage.
	HeapLive uint64 `json:"heap_live"`
}

// peakInterval is how often samplePeak looks: short enough to catch a download's
// heap swinging between collections.
const peakInterval = 5 * time.Millisecond

// samplePeak watches the runtime's memory until the returned function is called,
// which returns the peak.
func samplePeak() func() memPeak {
	var names []string
	for _, d := range metrics.All() {
		if len(d.Name) > len("/memory/classes/") && d.Name[:len("/memory/classes/")] == "/memory/classes/" && d.Kind == metrics.KindUint64 {
			names = append(names, d.Name)
		}
	}
	names = append(names, "/gc/cycles/total:gc-cycles", "/gc/heap/goal:bytes", "/gc/heap/live:bytes")
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	var peak memPeak
	look := func() {
		metrics.Read(samples)
		var total, released uint64
		for _, s := range samples {
			switch s.Name {
			case "/memory/classes/total:bytes":
				total = s.Value.Uint64()
			case "/memory/classes/heap/released:bytes":
				released = s.Value.Uint64()
			}
		}
		if held := total - released; held > peak.Held {
			peak = memPeak{Time: time.Now().UTC(), Held: held, Classes: map[string]uint64{}}
			for _, s := range samples {
				switch s.Name {
				case "/gc/cycles/total:gc-cycles":
					peak.GCs = s.Value.Uint64()
				case "/gc/heap/goal:bytes":
					peak.HeapGoal = s.Value.Uint64()
				case "/gc/heap/live:bytes":
					peak.HeapLive = s.Value.Uint64()
				default:
					peak.Classes[s.Name] = s.Value.Uint64()
				}
			}
		}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(peakInterval)
		defer t.Stop()
		for {
			look()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() memPeak { close(stop); <-done; look(); return peak }
}
