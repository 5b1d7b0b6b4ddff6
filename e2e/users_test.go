//go:build unix

package e2e

import (
	"strconv"
	"strings"
	"testing"
)

func TestOtherUser(t *testing.T) {
	u := OtherUser(t)
	out, err := u.Command("id", "-u").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != strconv.Itoa(u.UID) || u.UID == 0 {
		t.Errorf("id -u as %s printed %q; want %d (not root)", u.Name, got, u.UID)
	}
}
