//go:build unix

package remote

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// runImpostor is the attacker of a shared machine (run as another uid): it watches
// every process's command line for marker, takes the port that follows it on
// 127.0.0.1 before the slow app binds it, and answers like a web server, printing
// "took PORT" and every byte it receives ("got PORT %q"). Unless always, it takes one
// port, holds it for 3 s, lets go and exits; with always it takes every new port it
// sees until killed (or 60 s).
func runImpostor(marker string, always bool) int {
	if marker == "" {
		fmt.Println("no marker")
		return 2
	}
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	taken := map[string]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		port := markedPort(marker)
		if port == "" || taken[port] {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		taken[port] = true
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			say("bind %s: %v", port, err)
			continue
		}
		say("took %s", port)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					c.SetDeadline(time.Now().Add(2 * time.Second))
					var got bytes.Buffer
					buf := make([]byte, 4096)
					for !bytes.Contains(got.Bytes(), []byte("\r\n\r\n")) {
						n, err := c.Read(buf)
						got.Write(buf[:n])
						if err != nil {
							break
						}
					}
					if got.Len() > 0 {
						say("got %s %q", port, got.String())
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\nConnection: close\r\n\r\nimpostor page")
					}
				}()
			}
		}()
		if !always {
			time.Sleep(3 * time.Second)
			ln.Close()
			say("released %s", port)
			time.Sleep(100 * time.Millisecond)
			return 0
		}
	}
	return 0
}

// markedPort scans /proc/*/cmdline for an argument equal to marker and returns the
// argument after it.
func markedPort(marker string) string {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(marker)) {
			continue
		}
		args := strings.Split(string(b), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] == marker {
				return args[i+1]
			}
		}
	}
	return ""
}
