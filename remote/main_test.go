//go:build unix

package remote

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/stripe"
)

// TestMain lets the test binary act as a helper process: a stand-in server that
// starts an app and is then killed, or a client of another uid.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == AppSupervisorArg {
		os.Exit(RunAppSupervisor(os.Args[2:])) // what main does for the real binary
	}
	if len(os.Args) > 1 && os.Args[1] == LoginEnvArg {
		os.Exit(RunLoginEnvDump(os.Args[2:])) // the end of the login shell (loginenv.go)
	}
	switch os.Getenv("TETHER_REMOTE_TEST_HELPER") {
	case "":
		os.Exit(m.Run())
	case "start-app":
		// Start `sleep` as the app, print its pid, then wait to be killed.
		root, _ := os.MkdirTemp("", "helper-")
		s := &session{ID: "helperid", Dir: root, SockDir: root}
		command := []string{"sleep", "600"}
		if sh := os.Getenv("TETHER_REMOTE_TEST_APP"); sh != "" {
			command = []string{"sh", "-c", sh}
			appGrace = 500 * time.Millisecond
		}
		p, err := AppSpec{Command: command}.plan(s, "/")
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		app, err := startApp(p, os.Stderr)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(app.pid)
		time.Sleep(time.Minute)
		os.Exit(0)
	case "detach-chatter":
		// A background server that reports progress on the ready pipe (fd 3), a lot
		// of it at once, then never gets ready.
		var b strings.Builder
		for i := 0; i < 2000; i++ {
			fmt.Fprintf(&b, "{\"progress\":{\"level\":\"step\",\"said\":[{\"text\":\"step %d\"}]}}\n", i)
		}
		os.NewFile(3, "ready-pipe").WriteString(b.String()) // one write: all of it waits in the pipe
		time.Sleep(time.Minute)
		os.Exit(0)
	case "detach-ready":
		// A background server that reports ready at once (with its pid) without
		// reading its stdin (where a setup frame may wait), then lives on until killed.
		fmt.Fprintf(os.NewFile(3, "ready-pipe"), "{\"ready\":{\"id\":\"helperid\",\"pid\":%d}}\n", os.Getpid())
		time.Sleep(time.Minute)
		os.Exit(0)
	case "detach-fail", "detach-exit", "detach-silent":
		// Background servers that never get ready; each writes its pid to
		// $TETHER_REMOTE_TEST_MARKER first.
		os.WriteFile(os.Getenv("TETHER_REMOTE_TEST_MARKER"), []byte(strconv.Itoa(os.Getpid())), 0o600)
		detachHelper(os.Getenv("TETHER_REMOTE_TEST_HELPER"))
	case "listen":
		// Listen on 127.0.0.1:0 (as whatever user we run as), print the port, and
		// accept until killed.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Println("listen:", err)
			os.Exit(1)
		}
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(0)
			}
			go func() { time.Sleep(5 * time.Second); c.Close() }()
		}
	case "listen-record":
		// Listen on 127.0.0.1:0, print the port, then a line for every connection
		// accepted ("conn") and every read ("got N: BYTES"), until killed.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Println("listen:", err)
			os.Exit(1)
		}
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(0)
			}
			fmt.Println("conn")
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						fmt.Printf("got %d: %q\n", n, buf[:n])
					}
					if err != nil {
						return
					}
				}
			}()
		}
	case "impostor":
		os.Exit(runImpostor(os.Getenv("TETHER_REMOTE_TEST_MARKER"), os.Getenv("TETHER_REMOTE_TEST_IMPOSTOR") == "always"))
	case "raw-request":
		// Send the raw HTTP request in the environment to the TCP address in the
		// environment, then "probe" behind it; print the answer's status line.
		c, err := net.DialTimeout("tcp", os.Getenv("TETHER_REMOTE_TEST_ADDR"), 2*time.Second)
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(0)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(c, os.Getenv("TETHER_REMOTE_TEST_REQUEST"))
		line, err := bufio.NewReader(c).ReadString('\n')
		fmt.Printf("status %q %v\n", strings.TrimSpace(line), err)
		if strings.Contains(line, " 101 ") {
			c.Write([]byte("probe"))
			time.Sleep(200 * time.Millisecond)
		}
		os.Exit(0)
	case "connect":
		// Dial the Unix socket named in the environment and report what happened.
		c, err := net.DialTimeout("unix", os.Getenv("TETHER_REMOTE_TEST_SOCKET"), 2*time.Second)
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(0)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(make([]byte, 1))
		fmt.Printf("read %d: %v\n", n, err)
		os.Exit(0)
	case "stripe-hello":
		// Dial the Unix socket, say a stripe's hello (group id in hex, index, count from
		// the environment), and report what happened.
		c, err := net.DialTimeout("unix", os.Getenv("TETHER_REMOTE_TEST_SOCKET"), 2*time.Second)
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(0)
		}
		id, _ := hex.DecodeString(os.Getenv("TETHER_REMOTE_TEST_STRIPE_ID"))
		index, _ := strconv.Atoi(os.Getenv("TETHER_REMOTE_TEST_STRIPE_INDEX"))
		count, _ := strconv.Atoi(os.Getenv("TETHER_REMOTE_TEST_STRIPE_COUNT"))
		c.Write(append(append([]byte(stripe.Magic), id...), byte(index), byte(count)))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(make([]byte, 1))
		fmt.Printf("read %d: %v\n", n, err)
		os.Exit(0)
	}
}

// detachHelper is a background server that never gets ready: detach-fail reports its
// app's failure with its output, then exits; detach-exit exits without a word;
// detach-silent never reports, until stopped (SIGTERM ends it).
func detachHelper(mode string) {
	switch mode {
	case "detach-fail":
		os.NewFile(3, "ready-pipe").WriteString(`{"failure":{"error":"the app exited with status 2","hint":"","app_output":["one","two"]}}` + "\n")
		os.Exit(1)
	case "detach-exit":
		os.Exit(3)
	}
	time.Sleep(time.Minute)
	os.Exit(0)
}
