package sitesync

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/job"
)

func TestSubstitute(t *testing.T) {
	t.Parallel()
	subs := []Substitution{{From: "10.0.0.5", To: "10.9.0.5"}, {From: "reports.prod", To: "reports.dr"}}
	sp := job.Spec{Name: "report-10.0.0.5", Command: &job.Command{
		Argv: []string{"fetch", "--host=10.0.0.5", "--other=10.0.0.50", "http://reports.prod/x", "reports.production"},
		Env:  map[string]string{"DB": "10.0.0.5:5432", "NAME": "x10.0.0.5"}, Dir: "/mnt/reports.prod/out"},
		Deliver: []job.Deliver{{Webhook: "https://reports.prod/hook"}, {Directory: "/srv/10.0.0.5/drop"}, {Email: []string{"ops@reports.prod"}}}}
	def, _ := json.Marshal(sp)
	out, rw, err := Substitute(def, subs)
	if err != nil {
		t.Fatal(err)
	}
	var got job.Spec
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := []string{"fetch", "--host=10.9.0.5", "--other=10.0.0.50", "http://reports.dr/x", "reports.production"}
	if strings.Join(got.Command.Argv, " ") != strings.Join(want, " ") {
		t.Errorf("argv %q, want %q", got.Command.Argv, want)
	}
	if got.Command.Env["DB"] != "10.9.0.5:5432" || got.Command.Env["NAME"] != "x10.0.0.5" || got.Command.Dir != "/mnt/reports.dr/out" {
		t.Errorf("env %v dir %q", got.Command.Env, got.Command.Dir)
	}
	if got.Deliver[0].Webhook != "https://reports.dr/hook" || got.Deliver[1].Directory != "/srv/10.9.0.5/drop" {
		t.Errorf("deliveries %+v", got.Deliver)
	}
	// Not address fields: the name and the recipients stay.
	if got.Name != sp.Name || got.Deliver[2].Email[0] != "ops@reports.prod" {
		t.Errorf("name %q email %v", got.Name, got.Deliver[2].Email)
	}
	if len(rw) != 6 || !strings.Contains(strings.Join(rw, "\n"), "command.argv.1: --host=10.0.0.5 → --host=10.9.0.5") {
		t.Errorf("rewritten %q", rw)
	}
	if out, rw, _ := Substitute(def, nil); string(out) != string(def) || rw != nil {
		t.Error("no substitution changed something")
	}
}

func FuzzSubstitute(f *testing.F) {
	f.Add(`{"url":"http://10.0.0.5:80/a"}`, "10.0.0.5", "h")
	f.Add(`{"command":{"argv":["a.b","a"]}}`, "a", "")
	f.Fuzz(func(t *testing.T, def, from, to string) {
		out, rw, err := Substitute([]byte(def), []Substitution{{From: from, To: to}})
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q", out)
		}
		if from == to && len(rw) > 0 && from != "" {
			for _, r := range rw {
				if !strings.Contains(r, " → ") {
					t.Fatal(r)
				}
			}
		}
	})
}
