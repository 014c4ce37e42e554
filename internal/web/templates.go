package web

import (
	"fmt"
	"html/template"
	"io/fs"
	"strings"
)

// pageNames are the page templates; each is parsed with layout.html into its own set, so
// every page can define "content".
var pageNames = []string{"error", "login", "persons", "person", "reporting", "terminated", "stats", "admin"}

var funcs = template.FuncMap{
	"number":  func(n any) string { return number(toInt64(n)) },
	"decimal": decimal,
	"percent": percent,
	"join":    strings.Join,
	// dict makes a map of key-value pairs, for a sub-template's arguments.
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			if k, ok := kv[i].(string); ok {
				m[k] = kv[i+1]
			}
		}
		return m
	},
	// skills are the norskmål's skills: form name and label.
	"skills": func() [][2]string {
		return [][2]string{{"lytte", "Lytte"}, {"lese", "Lese"}, {"skriftlig", "Skriftlig"}, {"muntlig", "Muntlig"}}
	},
}

func toInt64(n any) int64 {
	switch v := n.(type) {
	case int:
		return int64(v)
	case int32:
		return int64(v)
	case int64:
		return v
	case uint64:
		return int64(v)
	}
	return 0
}

func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: layout template: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := base.Clone()
		if err != nil {
			return nil, err
		}
		b, err := fs.ReadFile(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: page %s: %w", name, err)
		}
		if _, err := t.New(name + ".html").Parse(string(b)); err != nil {
			return nil, fmt.Errorf("web: page %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}
