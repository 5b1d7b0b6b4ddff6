package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Forward serves ln until ctx ends: each accepted connection is dialed with dial and
// spliced both ways, half-close aware (one side's EOF becomes CloseWrite on the other),
// until both directions are done. When ctx ends Forward closes ln and every spliced
// connection and returns nil once all its goroutines have exited. An Accept error other
// than the listener being closed is returned. A failed dial closes only that
// connection; dial is given a context that ends with Forward's.
func Forward(ctx context.Context, ln net.Listener, dial func(context.Context) (net.Conn, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	active := map[net.Conn]struct{}{}
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			return false
		}
		active[c] = struct{}{}
		return true
	}
	untrack := func(c net.Conn) {
		mu.Lock()
		delete(active, c)
		mu.Unlock()
	}
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range active {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	defer wg.Wait()

	var tempDelay time.Duration
	for {
		local, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				cancel()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// EMFILE and friends: back off instead of spinning, like net/http.
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(tempDelay):
				case <-ctx.Done():
				}
				continue
			}
			cancel()
			return err
		}
		tempDelay = 0
		if !track(local) {
			local.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer untrack(local)
			defer local.Close()
			remote, err := dial(ctx)
			if err != nil {
				return
			}
			if !track(remote) {
				remote.Close()
				return
			}
			defer untrack(remote)
			defer remote.Close()
			Splice(local, remote)
		}()
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Splice buffers: each direction starts with a small one, which is all an idle or
// chatty connection (small requests, WebSocket messages) ever needs, and moves to a
// big one the first time a read fills it: large enough that a fast local client fills
// whole SSH packets (32 KiB payload) several at a time. Many open connections then
// hold 32 KiB per direction, not 256 KiB, which also keeps the GC's heap goal low.
const (
	smallBufSize = 32 << 10
	bigBufSize   = 256 << 10
)

var (
	smallBufPool = sync.Pool{New: func() any { b := make([]byte, smallBufSize); return &b }}
	bigBufPool   = sync.Pool{New: func() any { b := make([]byte, bigBufSize); return &b }}
)

// Splice copies a→b and b→a until both directions end. A clean EOF in one direction
// half-closes the other side's write end (when it can); an error in either direction
// closes both (a TCP end it was copying to with a reset). It does not close a or b itself when both end cleanly; the caller does.
func Splice(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pipe(b, a) }()
	go func() { defer wg.Done(); pipe(a, b) }()
	wg.Wait()
}

type closeWriter interface{ CloseWrite() error }

func pipe(dst, src net.Conn) {
	copyFn := copyAdaptive
	if kernelConn(dst) && kernelConn(src) {
		// Socket to socket (the OpenSSH transport's forwards): io.Copy lets the kernel
		// move the bytes (splice), none of them through this process.
		copyFn = func(dst io.Writer, src io.Reader) error {
			_, err := io.Copy(dst, src)
			return err
		}
	}
	if err := copyFn(dst, src); err != nil {
		// A broken direction ends both. A local TCP client is reset, not sent a FIN: a
		// response cut short (close-delimited) must not look complete to a browser.
		// (Not when this side closed the connection itself: Splice's other direction.)
		if tc, ok := dst.(*net.TCPConn); ok && !errors.Is(err, net.ErrClosed) {
			tc.SetLinger(0)
		}
		dst.Close()
		src.Close()
		return
	}
	if cw, ok := dst.(closeWriter); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	dst.Close()
}

// kernelConn: a plain TCP or Unix socket, which io.Copy splices.
func kernelConn(c net.Conn) bool {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// copyAdaptive copies src to dst until EOF (nil) or an error, like io.Copy, through a
// small pooled buffer that is swapped for a big one once a read fills it. It calls
// Read and Write directly: TCPConn.WriteTo into an SSH channel would fall back to a
// 32 KiB copy loop of its own.
func copyAdaptive(dst io.Writer, src io.Reader) error {
	small := smallBufPool.Get().(*[]byte)
	defer smallBufPool.Put(small)
	var big *[]byte
	defer func() {
		if big != nil {
			bigBufPool.Put(big)
		}
	}()
	buf := *small
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			if werr != nil {
				return werr
			}
			if w != n {
				return io.ErrShortWrite
			}
			if n == len(buf) && big == nil {
				big = bigBufPool.Get().(*[]byte)
				buf = *big
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
