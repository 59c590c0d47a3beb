package api

import (
	"embed"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"strings"
	"sync"
)

// The types' own source, read for their doc comments: the API server's
// OpenAPI documents carry them as descriptions (kubectl explain prints
// them), so that they are written once, here, next to the fields.
//
//go:embed meta.go core.go apps.go quantity.go event.go
var typeSources embed.FS

var (
	typeDocsOnce sync.Once
	typeDocs     map[string]string
)

// TypeDocs returns the doc comments of the exported types of meta.go,
// core.go, apps.go, quantity.go and event.go and of their fields, by Go name: "Pod"
// for the type, "PodSpec.NodeName" for a field (its doc comment, else its
// line comment). The map is shared: do not change it.
func TypeDocs() map[string]string {
	typeDocsOnce.Do(func() { typeDocs = parseTypeDocs() })
	return typeDocs
}

func parseTypeDocs() map[string]string {
	docs := map[string]string{}
	entries, err := typeSources.ReadDir(".")
	if err != nil {
		return docs
	}
	fset := gotoken.NewFileSet()
	for _, e := range entries {
		src, err := typeSources.ReadFile(e.Name())
		if err != nil {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), src, parser.ParseComments)
		if err != nil {
			continue // the package compiled: this does not happen
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != gotoken.TYPE {
				continue
			}
			for _, s := range gd.Specs {
				ts := s.(*ast.TypeSpec)
				if !ts.Name.IsExported() {
					continue
				}
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				setDoc(docs, ts.Name.Name, doc)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, fld := range st.Fields.List {
					c := fld.Doc
					if c == nil {
						c = fld.Comment
					}
					for _, n := range fld.Names {
						setDoc(docs, ts.Name.Name+"."+n.Name, c)
					}
				}
			}
		}
	}
	return docs
}

func setDoc(docs map[string]string, key string, c *ast.CommentGroup) {
	if c == nil {
		return
	}
	if t := strings.TrimSpace(c.Text()); t != "" {
		docs[key] = strings.Join(strings.Fields(t), " ")
	}
}
