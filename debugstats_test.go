package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStatsOffByDefault(t *testing.T) {
	t.Setenv("TETHER_DEBUG_STATS", "")
	startStats([]string{"launch"})() // nothing to stop, nothing written
}

func TestStatsWritesCountsAndStacks(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TETHER_DEBUG_STATS", dir)
	runtime.GC() // so that there is a live heap to report
	stop := startStats([]string{"launch", "host"})
	stop()
	base := filepath.Join(dir, "tether-launch-"+strconv.Itoa(os.Getpid()))
	b, err := os.ReadFile(base + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var s debugStats
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if s.PID != os.Getpid() || s.Goroutines < 1 || s.HeapInuse == 0 || s.HeapLive == 0 || time.Since(s.Time) > time.Minute {
		t.Errorf("stats %+v", s)
	}
	g, err := os.ReadFile(base + ".goroutines")
	if err != nil || !strings.Contains(string(g), "goroutine profile: total") {
		t.Errorf("goroutines file: %v\n%.200s", err, g)
	}
	for _, f := range []string{base + ".json", base + ".goroutines"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v; want 0600", f, fi.Mode().Perm())
		}
	}
}
