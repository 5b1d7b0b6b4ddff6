//go:build linux

package main

// What a page load costs on the wire, as Chromium saw it (the DevTools Network
// domain): requests, redirects, new connections (each one a channel open through SSH,
// a round trip of the link), answers from the cache and revalidations (304). Both
// columns load the same pages, so these counts say where a difference in time comes
// from. Each page load's requests are written beside the results too
// (--out, netlog-PATH.jsonl), one JSON line per request.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// netEntry is one request of a page load.
type netEntry struct {
	ID        string  `json:"id"`
	URL       string  `json:"url"` // without the query (it may hold a token)
	Method    string  `json:"method"`
	Type      string  `json:"type"`
	Status    int64   `json:"status"`
	Redirect  bool    `json:"redirected"` // answered with a redirect (3xx Location)
	Conn      float64 `json:"connection_id"`
	Reused    bool    `json:"connection_reused"`
	Cached    bool    `json:"from_cache"`
	Bytes     float64 `json:"encoded_bytes"`
	StartMS   float64 `json:"start_ms"` // since the page load began
	EndMS     float64 `json:"end_ms"`
	ConnectMS float64 `json:"connect_ms"` // the TCP connect Chromium timed (-1: none)
}

// netLog collects the Network events of one tab.
type netLog struct {
	mu      sync.Mutex
	start   time.Time
	byID    map[network.RequestID]*netEntry
	entries []*netEntry
}

// listen starts collecting the tab's network events (network.Enable comes with the
// tab's first action; chromedp enables the Network domain itself).
func (n *netLog) listen(ctx context.Context) error {
	n.byID = map[network.RequestID]*netEntry{}
	return chromedp.Listen(ctx, func(ev any) {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.start.IsZero() {
			return
		}
		ms := float64(time.Since(n.start).Microseconds()) / 1000
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			if e.RedirectResponse != nil {
				if prev := n.byID[e.RequestID]; prev != nil {
					prev.Status, prev.Redirect, prev.EndMS = e.RedirectResponse.Status, true, ms
					n.fillResponse(prev, e.RedirectResponse)
				}
			}
			ent := &netEntry{ID: string(e.RequestID), URL: cutQuery(e.Request.URL), Method: e.Request.Method, Type: string(e.Type), StartMS: ms, ConnectMS: -1}
			n.byID[e.RequestID] = ent
			n.entries = append(n.entries, ent)
		case *network.EventResponseReceived:
			if ent := n.byID[e.RequestID]; ent != nil {
				ent.Status = e.Response.Status
				n.fillResponse(ent, e.Response)
			}
		case *network.EventLoadingFinished:
			if ent := n.byID[e.RequestID]; ent != nil {
				ent.EndMS, ent.Bytes = ms, e.EncodedDataLength
			}
		case *network.EventWebSocketCreated:
			ent := &netEntry{ID: string(e.RequestID), URL: cutQuery(e.URL), Method: "GET", Type: "WebSocket", StartMS: ms, ConnectMS: -1}
			n.byID[e.RequestID] = ent
			n.entries = append(n.entries, ent)
		case *network.EventWebSocketHandshakeResponseReceived:
			if ent := n.byID[e.RequestID]; ent != nil {
				ent.Status, ent.EndMS = e.Response.Status, ms
			}
		}
	})
}

func (n *netLog) fillResponse(ent *netEntry, r *network.Response) {
	ent.Conn, ent.Reused = r.ConnectionID, r.ConnectionReused
	ent.Cached = r.FromDiskCache || r.FromPrefetchCache || r.FromServiceWorker
	if t := r.Timing; t != nil && t.ConnectStart >= 0 {
		ent.ConnectMS = t.ConnectEnd - t.ConnectStart
	}
}

// begin starts a page load's log.
func (n *netLog) begin() {
	n.mu.Lock()
	n.start, n.entries, n.byID = time.Now(), nil, map[network.RequestID]*netEntry{}
	n.mu.Unlock()
}

// pageCounts sums up a page load.
type pageCounts struct {
	requests, redirects, conns, cached, notModified int
	// toPage is the time from the first request to the request of the page itself
	// (the last document of the redirect chain): what the redirects cost.
	toPage time.Duration
}

// end stops the page load's log, appends it to file and returns its counts.
func (n *netLog) end(file, page string) pageCounts {
	n.mu.Lock()
	entries := n.entries
	n.start, n.entries = time.Time{}, nil
	n.mu.Unlock()
	var c pageCounts
	conns := map[float64]bool{}
	for _, e := range entries {
		c.requests++
		if e.Redirect {
			c.redirects++
		}
		if e.Cached {
			c.cached++
		}
		if e.Status == 304 {
			c.notModified++
		}
		if e.Conn != 0 && !e.Cached {
			conns[e.Conn] = true
		}
	}
	c.conns = len(conns)
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].StartMS < entries[j].StartMS })
	var first, last float64 = -1, -1
	for _, e := range entries {
		if e.Type == "Document" {
			if first < 0 {
				first = e.StartMS
			}
			last = e.StartMS
		}
	}
	if first >= 0 {
		c.toPage = time.Duration((last - first) * float64(time.Millisecond))
	}
	os.MkdirAll(filepath.Dir(file), 0o755)
	if f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		enc := json.NewEncoder(f)
		enc.Encode(map[string]any{"page": page, "requests": entries})
		f.Close()
	}
	return c
}

// recordCounts records a page load's counts as metrics of the path.
func (b *bench) recordCounts(p *route, page string, c pageCounts) {
	b.record(metric{page + ": requests", "n", false}, p.name, float64(c.requests))
	b.record(metric{page + ": redirects", "n", false}, p.name, float64(c.redirects))
	b.record(metric{page + ": connections", "n", false}, p.name, float64(c.conns))
}

// recordRedirectTime records how long a page load's redirects took, until the page's
// own request went out.
func (b *bench) recordRedirectTime(p *route, page string, c pageCounts) {
	b.record(metric{page + ": redirects until the page", "s", false}, p.name, c.toPage.Seconds())
}

func netLogFile(dir, path string) string { return filepath.Join(dir, "netlog-"+path+".jsonl") }

func cutQuery(u string) string {
	for i := 0; i < len(u); i++ {
		if u[i] == '?' {
			return u[:i] + "?…"
		}
	}
	return u
}
