package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// The paths measured: tether (this tree's build), the --before binary, and OpenSSH's
// ssh -L.
const (
	pathTether = "tether"
	pathBefore = "before"
	pathSSH    = "ssh"
)

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

// printTable writes the rows as an aligned text table.
func printTable(w io.Writer, rows []*row, withBefore bool) {
	head := []string{"item", "unit", "tether", "ssh -L", "spread t/s", "ratio"}
	if withBefore {
		head = []string{"item", "unit", "tether", "before", "ssh -L", "spread t/b/s", "ratio", "vs before"}
	}
	cells := [][]string{head}
	for _, r := range rows {
		t, tok := r.Median[pathTether]
		s, sok := r.Median[pathSSH]
		b, bok := r.Median[pathBefore]
		sp := func(k string) string {
			if _, ok := r.Median[k]; !ok {
				return "-"
			}
			return fmt.Sprintf("%.0f%%", 100*r.Spread[k])
		}
		ratio := "-"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2fx", r.Ratio)
		}
		unit := r.Unit
		if r.Higher {
			unit += " ↑"
		} else {
			unit += " ↓"
		}
		if withBefore {
			rb := "-"
			if r.RatioBefore > 0 {
				rb = fmt.Sprintf("%.2fx", r.RatioBefore)
			}
			cells = append(cells, []string{r.Name, unit, fmtValue(t, tok), fmtValue(b, bok), fmtValue(s, sok),
				sp(pathTether) + "/" + sp(pathBefore) + "/" + sp(pathSSH), ratio, rb})
		} else {
			cells = append(cells, []string{r.Name, unit, fmtValue(t, tok), fmtValue(s, sok),
				sp(pathTether) + "/" + sp(pathSSH), ratio})
		}
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
