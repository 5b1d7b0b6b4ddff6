package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestMedianSpreadPercentile(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median odd = %v, want 2", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median even = %v, want 2.5", got)
	}
	if got := median(nil); got != 0 {
		t.Errorf("median(nil) = %v, want 0", got)
	}
	if got := spread([]float64{90, 100, 110}); got != 0.2 {
		t.Errorf("spread = %v, want 0.2", got)
	}
	if got := spread([]float64{5}); got != 0 {
		t.Errorf("spread of one = %v, want 0", got)
	}
	sorted := make([]float64, 1000)
	for i := range sorted {
		sorted[i] = float64(i + 1)
	}
	for _, c := range []struct{ p, want float64 }{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0, 1}} {
		if got := percentile(sorted, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
}

func TestRowRatioAndTable(t *testing.T) {
	r := &row{metric: metric{Name: "download", Unit: "MB/s", Higher: true},
		Values: map[string][]float64{pathTether: {80, 90, 100}, pathSSH: {100, 100, 100}}}
	r.summarize()
	if r.Ratio != 0.9 || r.RatioBefore != 0 {
		t.Errorf("ratio %v, before %v; want 0.9 and none", r.Ratio, r.RatioBefore)
	}
	if r.Spread[pathTether] < 0.2221 || r.Spread[pathTether] > 0.2223 {
		t.Errorf("spread %v, want 0.222", r.Spread[pathTether])
	}
	only := &row{metric: metric{Name: "reconnect", Unit: "s"}, Values: map[string][]float64{pathTether: {0.1}}}
	only.summarize()
	var b bytes.Buffer
	printTable(&b, []*row{r, only}, []string{pathTether, pathSSH})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines, want 3:\n%s", len(lines), b.String())
	}
	if !strings.Contains(lines[1], "0.90x") || !strings.Contains(lines[1], "90.00") {
		t.Errorf("download line %q lacks the ratio or the median", lines[1])
	}
	if !strings.HasSuffix(lines[2], "-") || !strings.Contains(lines[2], "0.100") {
		t.Errorf("reconnect line %q: want tether's value and no ratio", lines[2])
	}

	// With --ssh openssh measured: its column and its ratio to ssh -L.
	r.Values[pathOpenSSH] = []float64{95, 96, 97}
	r.summarize()
	b.Reset()
	printTable(&b, []*row{r}, []string{pathTether, pathOpenSSH, pathSSH})
	lines = strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "--ssh openssh") || !strings.Contains(lines[0], "openssh/ssh") ||
		!strings.Contains(lines[1], "96.00") || !strings.HasSuffix(lines[1], "0.96x") {
		t.Errorf("with openssh:\n%s", b.String())
	}
}
