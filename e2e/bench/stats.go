package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// The paths measured: tether (this tree's build), the --before binary, this build with
// --ssh openssh (the user's ssh through a ControlMaster), OpenSSH's ssh -L to the app,
// and ssh -L to the --ssh openssh session's socket (through the same guarded server:
// the transports compared alone).
const (
	pathTether  = "tether"
	pathBefore  = "before"
	pathOpenSSH = "openssh"
	pathSSH     = "ssh"
	pathSSHSock = "sock"
	pathRelay   = "relay"
)

// columnName is a path's column heading.
var columnName = map[string]string{pathTether: "tether", pathBefore: "before", pathOpenSSH: "--ssh openssh", pathSSH: "ssh -L",
	pathSSHSock: "ssh -L sock", pathRelay: "--relay"}

// isSSH: the path is a plain ssh -L, not a launcher.
func isSSH(name string) bool { return name == pathSSH || name == pathSSHSock }

// metric is one row of the table.
type metric struct {
	Name   string `json:"name"`
	Unit   string `json:"unit"`
	Higher bool   `json:"higher_is_better"`
}

// row is a metric with the values every path gave, one per round.
type row struct {
	metric
	Values map[string][]float64 `json:"values"`
	Median map[string]float64   `json:"median"`
	Spread map[string]float64   `json:"spread"` // (max-min)/median
	// Ratio is tether's median over ssh -L's (0 when either is missing).
	Ratio float64 `json:"ratio,omitempty"`
	// RatioBefore is tether's median over the --before binary's.
	RatioBefore float64 `json:"ratio_before,omitempty"`
	// RatioOpenSSH is --ssh openssh's median over ssh -L's.
	RatioOpenSSH float64 `json:"ratio_openssh,omitempty"`
	// RatioOpenSSHSock is --ssh openssh's median over ssh -L to its session's socket.
	RatioOpenSSHSock float64 `json:"ratio_openssh_sock,omitempty"`
	// RatioRelay is --relay's median over tether's: the same launcher and server, SSH
	// through the relay's WebSocket streams instead of a TCP connection to sshd.
	RatioRelay float64 `json:"ratio_relay,omitempty"`
}

// median of xs (0 for none); xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread is (max-min)/median: 0.05 means the rounds were within 5% of the median.
func spread(xs []float64) float64 {
	m := median(xs)
	if len(xs) < 2 || m == 0 {
		return 0
	}
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return (hi - lo) / m
}

// percentile of sorted xs, p in [0,1], nearest rank.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// summarize fills Median, Spread and the ratios.
func (r *row) summarize() {
	r.Median, r.Spread = map[string]float64{}, map[string]float64{}
	for k, v := range r.Values {
		if len(v) > 0 {
			r.Median[k], r.Spread[k] = median(v), spread(v)
		}
	}
	if t, s := r.Median[pathTether], r.Median[pathSSH]; t > 0 && s > 0 {
		r.Ratio = t / s
	}
	if t, b := r.Median[pathTether], r.Median[pathBefore]; t > 0 && b > 0 {
		r.RatioBefore = t / b
	}
	if o, s := r.Median[pathOpenSSH], r.Median[pathSSH]; o > 0 && s > 0 {
		r.RatioOpenSSH = o / s
	}
	if o, s := r.Median[pathOpenSSH], r.Median[pathSSHSock]; o > 0 && s > 0 {
		r.RatioOpenSSHSock = o / s
	}
	if v, t := r.Median[pathRelay], r.Median[pathTether]; v > 0 && t > 0 {
		r.RatioRelay = v / t
	}
}

func fmtValue(v float64, ok bool) string {
	switch {
	case !ok:
		return "-"
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// printTable writes the rows as an aligned text table: a column per path measured
// (in paths' order), the spreads, tether / ssh -L, and --ssh openssh / ssh -L and
// tether / before when those were measured.
func printTable(w io.Writer, rows []*row, paths []string) {
	has := map[string]bool{}
	for _, p := range paths {
		has[p] = true
	}
	head := []string{"item", "unit"}
	var letters []string
	for _, p := range paths {
		head = append(head, columnName[p])
		letters = append(letters, map[string]string{pathTether: "t", pathBefore: "b", pathOpenSSH: "o", pathSSH: "s", pathSSHSock: "k", pathRelay: "r"}[p])
	}
	head = append(head, "spread "+strings.Join(letters, "/"), "ratio")
	if has[pathOpenSSH] {
		head = append(head, "openssh/ssh")
	}
	if has[pathSSHSock] {
		head = append(head, "openssh/sock")
	}
	if has[pathBefore] {
		head = append(head, "vs before")
	}
	if has[pathRelay] {
		head = append(head, "relay/tether")
	}
	ratio := func(v float64) string {
		if v > 0 {
			return fmt.Sprintf("%.2fx", v)
		}
		return "-"
	}
	cells := [][]string{head}
	for _, r := range rows {
		unit := r.Unit
		if r.Higher {
			unit += " ↑"
		} else {
			unit += " ↓"
		}
		line := []string{r.Name, unit}
		var spreads []string
		for _, p := range paths {
			v, ok := r.Median[p]
			line = append(line, fmtValue(v, ok))
			if ok {
				spreads = append(spreads, fmt.Sprintf("%.0f%%", 100*r.Spread[p]))
			} else {
				spreads = append(spreads, "-")
			}
		}
		line = append(line, strings.Join(spreads, "/"), ratio(r.Ratio))
		if has[pathOpenSSH] {
			line = append(line, ratio(r.RatioOpenSSH))
		}
		if has[pathSSHSock] {
			line = append(line, ratio(r.RatioOpenSSHSock))
		}
		if has[pathBefore] {
			line = append(line, ratio(r.RatioBefore))
		}
		if has[pathRelay] {
			line = append(line, ratio(r.RatioRelay))
		}
		cells = append(cells, line)
	}
	width := make([]int, len(head))
	for _, c := range cells {
		for i, s := range c {
			width[i] = max(width[i], len([]rune(s)))
		}
	}
	for _, c := range cells {
		var b strings.Builder
		for i, s := range c {
			pad := width[i] - len([]rune(s))
			if i == 0 || i == 1 {
				b.WriteString(s + strings.Repeat(" ", pad))
			} else {
				b.WriteString(strings.Repeat(" ", pad) + s)
			}
			if i < len(c)-1 {
				b.WriteString("  ")
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}
