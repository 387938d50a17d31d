package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A full scenario with secrets: set from stdin, used by a command job's env and by an
// http job's URL userinfo, query and header, resolved on the worker (the receiver gets
// them); then no log line, API answer, CLI output or event holds a value.
func TestSecretsNeverShow(t *testing.T) {
	dir := t.TempDir()
	const pass, tok = "s3cr3t-Pa55-xyzzy", "tok-9f8e7d6c5b4a"
	var mu sync.Mutex
	var got []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		mu.Lock()
		got = append(got, u+":"+p, r.URL.Query().Get("key"), r.Header.Get("X-Token"))
		mu.Unlock()
	}))
	defer recv.Close()
	s := startServer(t, filepath.Join(dir, "data"))
	setSecret := func(name, value string) {
		cmd := s.cli(exec.Command(binary, "secret", "set", name, "--server", s.addr))
		cmd.Stdin = strings.NewReader(value + "\n")
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "secret "+name+" set") {
			t.Fatalf("secret set: %v %s", err, out)
		}
	}
	setSecret("DB_PASS", pass)
	setSecret("TOKEN", tok)
	host := strings.TrimPrefix(recv.URL, "http://")
	applyJob(t, s, dir, fmt.Sprintf(`
[[job]]
name = "cmd"
[job.command]
argv = ["sh", "-c", "echo \"pass is $PASS\"; test ${#PASS} = %d"]
env = { PASS = '{{secret "DB_PASS"}}' }

[[job]]
name = "hook"
[job.http]
method = "POST"
url = 'http://alice:{{secret "DB_PASS"}}@%s/hook?key={{secret "TOKEN"}}'
headers = { X-Token = '{{secret "TOKEN"}}' }

[[job]]
name = "down"
[job.http]
url = 'http://alice:{{secret "DB_PASS"}}@127.0.0.1:1/x?key={{secret "TOKEN"}}'
`, len(pass), host))
	var seen []string
	for _, j := range []string{"cmd", "hook", "down"} {
		out, err := tandemErr(s, "run", j, "--wait", "--timeout", "60s")
		if (err != nil) != (j == "down") {
			t.Fatalf("run %s: %v %s", j, err, out)
		}
		seen = append(seen, out)
	}
	mu.Lock()
	if len(got) != 3 || got[0] != "alice:"+pass || got[1] != tok || got[2] != tok {
		t.Fatalf("the receiver got %q: the secrets were not resolved", got)
	}
	mu.Unlock()
	var rs []run
	if err := json.Unmarshal([]byte(tandem(t, s, "runs", "--json")), &rs); err != nil || len(rs) != 3 {
		t.Fatalf("runs: %v %+v", err, rs)
	}
	for _, r := range rs {
		seen = append(seen, tandem(t, s, "runs", "show", fmt.Sprint(r.ID)), tandem(t, s, "runs", "show", fmt.Sprint(r.ID), "--json"))
	}
	seen = append(seen, tandem(t, s, "job", "list", "--json"), tandem(t, s, "job", "show", "hook"), tandem(t, s, "job", "show", "down", "--json"),
		tandem(t, s, "events", "--json"), tandem(t, s, "secret", "list", "--json"), tandem(t, s, "runs"))
	all := strings.Join(seen, "\n")
	if !strings.Contains(all, "pass is «secret DB_PASS»") || !strings.Contains(all, `{{secret \"TOKEN\"}}`) || !strings.Contains(all, "secret.set") {
		t.Fatalf("the scenario's outputs do not show what they should:\n%s", all)
	}
	// The server's log, the repository file and what the CLI showed.
	time.Sleep(200 * time.Millisecond) // the last log lines of the runs
	all += strings.Join(s.logLines(), "\n")
	for _, v := range []string{pass, tok} {
		if i := strings.Index(all, v); i >= 0 {
			t.Errorf("secret value %q shows: …%s…", v, all[max(0, i-200):min(len(all), i+100)])
		}
	}
	db, err := os.ReadFile(filepath.Join(dir, "data", "tandem.db"))
	if err == nil && (strings.Contains(string(db), pass) || strings.Contains(string(db), tok)) {
		t.Error("a secret value is in the repository file in clear")
	}
}
