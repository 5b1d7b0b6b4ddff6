// Command get is TestWindowsLauncherUnderWine's browser: a Windows program that wine
// runs beside tether.exe, so that the launcher's check of who connects to its local
// port (the owner of the connecting process) sees a process of the same user, as it
// would a browser on Windows. It GETs its argument with the token from TETHER_TOKEN in
// the Authorization header (never in argv) and prints the status and the body.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	req, err := http.NewRequest(http.MethodGet, os.Args[1], nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	req.Header.Set("Authorization", "token "+os.Getenv("TETHER_TOKEN"))
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Printf("%d\n%s", resp.StatusCode, body)
}
