//go:build unix

package batch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
)

// TestSGEBatchJob: the harness's cell runs a job as qsub submits it (tether's own
// options: -terse, -N, -o, -j y, -S /bin/sh), qstat -xml lists it, and qacct has its
// exit status once it ends.
func TestSGEBatchJob(t *testing.T) {
	g := e2e.StartSGE(t)
	t.Logf("grid engine cold start: %v", g.ColdStart)
	dir := t.TempDir()
	script := filepath.Join(dir, "job.sh")
	e2e.WriteFile(t, script, "#!/bin/sh\necho \"job $JOB_ID on $HOSTNAME\"\nexit 3\n", 0o600)
	out := filepath.Join(dir, "job.out")
	id, _, err := g.Run("qsub", "-terse", "-N", "tether-test", "-o", out, "-j", "y", "-S", "/bin/sh", "-q", g.Queue, script)
	if err != nil {
		t.Fatal(err)
	}
	id = strings.TrimSpace(id)
	var data []byte
	if !e2e.WaitFor(30*time.Second, func() bool {
		data, _ = os.ReadFile(out)
		return strings.Contains(string(data), "job "+id)
	}) {
		t.Fatalf("job %s wrote %q; jobs %v", id, data, g.Jobs())
	}
	var acct string
	if !e2e.WaitFor(20*time.Second, func() bool {
		acct, _, err = g.Run("qacct", "-j", id)
		return err == nil && strings.Contains(acct, "exit_status")
	}) {
		t.Fatalf("qacct -j %s: %v %q", id, err, acct)
	}
	if !strings.Contains(acct, "exit_status  3") && !strings.Contains(acct, "exit_status 3") {
		t.Errorf("qacct: %s", acct)
	}
}
