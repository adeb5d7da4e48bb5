package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/report"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"message", "signin", "enroll", "account", "checks", "check", "reviews"}

type pages struct {
	byName map[string]*template.Template
	// assets maps a static file to its URL with a content hash, so that
	// browsers may cache it and never use a stale copy.
	assets map[string]string
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"join": strings.Join,
}

func mustParsePages() *pages {
	p := &pages{byName: map[string]*template.Template{}, assets: map[string]string{}}
	err := fs.WalkDir(staticFS, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		p.assets[path.Base(name)] = "/" + name + "?v=" + hex.EncodeToString(sum[:6])
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("reading embedded assets: %v", err))
	}
	assets := template.FuncMap{"asset": func(name string) (string, error) {
		u, ok := p.assets[name]
		if !ok {
			return "", fmt.Errorf("no asset %q", name)
		}
		return u, nil
	}}
	base := template.Must(template.New("layout.html").Funcs(funcs).Funcs(assets).ParseFS(templateFS, "templates/layout.html"))
	for _, name := range pageNames {
		t := template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html"))
		p.byName[name] = t
	}
	return p
}

// layoutView is what every page gets.
type layoutView struct {
	Title string
	User  string // the signed-in person's name, or ""
	Page  any
}

// titled is implemented by page views that name their page.
type titled interface{ title() string }

// messageView is a page that only says something.
type messageView struct {
	Title    string
	Message  string
	Link     string // where to go next, a local path
	LinkText string
}

func (v *messageView) title() string { return v.Title }

// render writes a page. It renders into a buffer first, so that a
// template error never leaves half a page.
func (w *Web) render(rw http.ResponseWriter, r *http.Request, status int, name string, view any) {
	w.renderAs(rw, r, status, name, "", view)
}

func (w *Web) renderAs(rw http.ResponseWriter, r *http.Request, status int, name, user string, view any) {
	t, ok := w.pages.byName[name]
	if !ok {
		panic("no page " + name)
	}
	lv := layoutView{User: user, Page: view}
	if v, ok := view.(titled); ok {
		lv.Title = v.title()
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", lv); err != nil {
		w.log.ErrorContext(r.Context(), "rendering page failed", "page", name, "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.WriteHeader(status)
	_, _ = rw.Write(visible(buf.Bytes()))
}

// visible shows every character of a page that a reviewer would not see as
// itself (a bidi override, a zero-width space, a control character: see
// report.Hidden) as a visible escape such as \u202e, so that what a plan
// says cannot read differently from what it does. The templates' own
// markup has none of them, so the whole page is rewritten, whichever field
// the text came from; an escape is plain ASCII, safe in text and in
// attribute values alike.
func visible(page []byte) []byte {
	if !bytes.ContainsFunc(page, report.Hidden) {
		return page
	}
	out := make([]byte, 0, len(page)+64)
	for _, r := range string(page) {
		out = append(out, report.Escape(r)...)
	}
	return out
}

// serveStatic serves the embedded CSS and script.
func (w *Web) serveStatic() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(rw, r) // no directory listings
			return
		}
		rw.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(rw, r)
	})
}
