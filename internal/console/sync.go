package console

import (
	"fmt"
	"net/http"

	"github.com/tandemhq/tandem/internal/api/wire"
	"github.com/tandemhq/tandem/internal/auth"
)

func (c *Console) registerSync(mux *http.ServeMux) {
	c.route(mux, "GET /sync", auth.Viewer, c.syncPage)
	c.route(mux, "POST /sync/pause", auth.Operator, c.syncVerb("pause"))
	c.route(mux, "POST /sync/resume", auth.Operator, c.syncVerb("resume"))
	c.route(mux, "POST /sync/full", auth.Admin, c.syncVerb("full"))
	c.route(mux, "POST /sync/promote", auth.Admin, c.syncVerb("promote"))
}

type syncData struct {
	pageData
	Status  wire.SyncStatus
	Actions []action
}

// syncPage shows the DR-site sync from this cluster's side: as a source (the sender's
// cursor, lag, failures) and as a target (its source, cursor, promotion).
func (c *Console) syncPage(w http.ResponseWriter, r *http.Request) {
	d := syncData{pageData: c.basePage(r, "Sync")}
	if err := c.call(r, http.MethodGet, "/api/v1/sync/status", nil, &d.Status); err != nil {
		c.fail(w, r, statusOf(err), errText(err))
		return
	}
	d.Actions = syncActions(d.Status, d.CanOperate, d.CanAdmin)
	c.render(w, http.StatusOK, "sync", d)
}

// syncActions are the sync's operator actions the status and the role allow, each
// saying what it will do.
func syncActions(st wire.SyncStatus, canOperate, canAdmin bool) []action {
	var out []action
	if s := st.Sender; s != nil && canOperate {
		if s.Paused {
			out = append(out, action{Name: "resume", Label: "Resume sync", Title: "Resume the sync to the DR site?", Path: "/sync/resume", Confirm: "Resume",
				Text: fmt.Sprintf("The primary sends the %d changes the DR site lacks, in order, from its cursor %d, and goes on sending each change as it is made.", s.LagChanges, s.Cursor)})
		} else {
			out = append(out, action{Name: "pause", Label: "Pause sync", Title: "Pause the sync to the DR site?", Path: "/sync/pause", Confirm: "Pause",
				Text: "No change is sent to the DR site until the sync is resumed; changes made meanwhile are kept and sent then, in order."})
		}
		if canAdmin {
			out = append(out, action{Name: "full", Label: "Full sync", Title: "Replace the DR site's configuration?", Path: "/sync/full", Confirm: "Full sync", Danger: true,
				Text: "The DR site's jobs, rules and settings are replaced, in one transaction, by this cluster's as they are now; streaming goes on from there. A failure leaves the DR site as it was."})
		}
	}
	if st.Target.Active && canAdmin {
		out = append(out, action{Name: "promote", Label: "Promote", Title: "Promote this cluster: end its role as the DR site?", Path: "/sync/promote", Confirm: "Promote", Danger: true,
			Text: fmt.Sprintf("This cluster stops taking changes from %s and resumes the jobs the sync held paused: it fires them from now on. Do this only when the production site is down (see docs/sitesync.md).", st.Target.SourceName)})
	}
	return out
}

// syncVerb performs a sync action through the API.
func (c *Console) syncVerb(verb string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := c.call(r, http.MethodPost, "/api/v1/sync/"+verb, nil, nil)
		back(w, r, "/sync", "sync: "+verb+" done", err)
	}
}
