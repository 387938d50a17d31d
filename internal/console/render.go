package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
)

// pageData is what every page's layout needs.
type pageData struct {
	Title    string
	Path     string
	Node     string
	User     string
	Role     string
	CSRF     string
	ReadOnly bool
	// CanOperate, CanAdmin: the session's role allows operator / admin actions here
	// (false on a read-only node).
	CanOperate, CanAdmin bool
	Msg, Err             string
	// Stream is the page's one SSE stream ("" : none).
	Stream string
}

func (c *Console) basePage(r *http.Request, title string) pageData {
	d := pageData{Title: title, Path: r.URL.Path, Node: c.p.NodeID, ReadOnly: c.p.ReadOnly,
		Msg: r.URL.Query().Get("msg"), Err: r.URL.Query().Get("err")}
	if s := sessionOf(r); s != nil {
		d.User, d.Role, d.CSRF = s.p.Name, string(s.p.Role), s.csrf
		d.CanOperate = !c.p.ReadOnly && s.p.Role.Allows(auth.Operator)
		d.CanAdmin = !c.p.ReadOnly && s.p.Role.Allows(auth.Admin)
	}
	return d
}

var funcs = template.FuncMap{
	"age":   age,
	"when":  when,
	"join":  strings.Join,
	"list":  func(v ...string) []string { return v },
	"short": func(s string, n int) string { return shortText(s, n) },
	"deref": func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	},
	"dur": func(ms *int64) string {
		if ms == nil {
			return ""
		}
		return (time.Duration(*ms) * time.Millisecond).String()
	},
	"code": func(p *int) string {
		if p == nil {
			return ""
		}
		return fmt.Sprint(*p)
	},
}

// age says how long ago t was, coarsely ("3s", "4m10s", "2h5m", "3d4h").
func age(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := max(now.Sub(t), 0).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// when formats an instant (pointer or value) in UTC, "" for none.
func when(v any) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return ""
		}
		t = *x
	}
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func shortText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// pageNames are the templates/NAME.html files that are whole pages (each parsed with
// layout.html).
func parseTemplates() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("parse console template %s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// render writes page name (its "page" template, inside the layout) with data.
func (c *Console) render(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		c.p.Log.Error("render console page", "page", name, "err", err)
		http.Error(w, "render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w)
}

// fragment renders one named template of page name (a panel) into a string.
func (c *Console) fragment(name, tmpl string, data any) (string, error) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, tmpl, data); err != nil {
		return "", fmt.Errorf("render %s/%s: %w", name, tmpl, err)
	}
	return buf.String(), nil
}

type failData struct {
	pageData
	Code    int
	Message string
}

// fail answers an error as a page (the status says it too).
func (c *Console) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	d := failData{pageData: c.basePage(r, http.StatusText(code)), Code: code, Message: msg}
	c.render(w, code, "error", d)
}

// back redirects to the page a form came from (its "back" field, a path on this site)
// with a message or an error.
func back(w http.ResponseWriter, r *http.Request, def, msg string, err error) {
	u, perr := url.Parse(cmpOr(safeNext(r.PostFormValue("back")), def))
	if perr != nil {
		u = &url.URL{Path: def}
	}
	q := u.Query()
	q.Del("msg")
	q.Del("err")
	if err != nil {
		q.Set("err", errText(err))
	} else {
		q.Set("msg", msg)
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}
