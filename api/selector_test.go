package api

import (
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestValidateLabelKey(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	tests := []struct {
		key     string
		wantErr string // substring; "" means valid
	}{
		{"app", ""},
		{"App.Name_x-1", ""},
		{"a", ""},
		{"9", ""},
		{long63, ""},
		{"shoal.dev/role", ""},
		{"a-b.c/x", ""},
		{strings.Repeat("a", 253) + "/x", ""},
		{"", "must not be empty"},
		{long63 + "b", "at most 63"},
		{"-app", "start and end"},
		{"app-", "start and end"},
		{"a b", "only letters"},
		{"a/b/c", "at most one '/'"},
		{"/x", "prefix must not be empty"},
		{"x/", "name part must not be empty"},
		{"Shoal.dev/x", "lower-case DNS subdomain"},
		{"a..b/x", "empty dot-separated"},
		{"-a.b/x", "start or end"},
		{strings.Repeat("a", 254) + "/x", "at most 253"},
	}
	for _, tt := range tests {
		err := ValidateLabelKey(tt.key)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("ValidateLabelKey(%q) = %v, want nil", tt.key, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ValidateLabelKey(%q) = %v, want error containing %q", tt.key, err, tt.wantErr)
		}
	}
}

func TestValidateLabelValue(t *testing.T) {
	tests := []struct {
		value string
		ok    bool
	}{
		{"", true},
		{"v1", true},
		{"a.b_c-d", true},
		{strings.Repeat("x", 63), true},
		{strings.Repeat("x", 64), false},
		{"-x", false},
		{"x.", false},
		{"a/b", false},
		{"a b", false},
	}
	for _, tt := range tests {
		err := ValidateLabelValue(tt.value)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateLabelValue(%q) = %v, want ok=%v", tt.value, err, tt.ok)
		}
	}
}

func TestParseSelector(t *testing.T) {
	tests := []struct {
		in   string
		want Selector
	}{
		{"", nil},
		{"   ", nil},
		{"a=b", Selector{{Key: "a", Operator: OpEquals, Values: []string{"b"}}}},
		{"a==b", Selector{{Key: "a", Operator: OpEquals, Values: []string{"b"}}}},
		{" a = b ", Selector{{Key: "a", Operator: OpEquals, Values: []string{"b"}}}},
		{"a=", Selector{{Key: "a", Operator: OpEquals, Values: []string{""}}}},
		{"a!=b", Selector{{Key: "a", Operator: OpNotEquals, Values: []string{"b"}}}},
		{"a", Selector{{Key: "a", Operator: OpExists}}},
		{"!a", Selector{{Key: "a", Operator: OpDoesNotExist}}},
		{" ! a ", Selector{{Key: "a", Operator: OpDoesNotExist}}},
		{"a in (x,y)", Selector{{Key: "a", Operator: OpIn, Values: []string{"x", "y"}}}},
		{"a in( x , y )", Selector{{Key: "a", Operator: OpIn, Values: []string{"x", "y"}}}},
		{"a notin (x)", Selector{{Key: "a", Operator: OpNotIn, Values: []string{"x"}}}},
		{"a in ()", Selector{{Key: "a", Operator: OpIn, Values: []string{""}}}},
		{"a in (,x)", Selector{{Key: "a", Operator: OpIn, Values: []string{"", "x"}}}},
		{"a in (x,)", Selector{{Key: "a", Operator: OpIn, Values: []string{"x", ""}}}},
		{"shoal.dev/role=voter", Selector{{Key: "shoal.dev/role", Operator: OpEquals, Values: []string{"voter"}}}},
		{"a=b,c in (d),!e,f", Selector{
			{Key: "a", Operator: OpEquals, Values: []string{"b"}},
			{Key: "c", Operator: OpIn, Values: []string{"d"}},
			{Key: "e", Operator: OpDoesNotExist},
			{Key: "f", Operator: OpExists},
		}},
	}
	for _, tt := range tests {
		got, err := ParseSelector(tt.in)
		if err != nil {
			t.Errorf("ParseSelector(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseSelector(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestParseSelectorErrors(t *testing.T) {
	tests := []struct {
		in      string
		wantErr []string // every substring must appear
	}{
		{"a=b,", []string{"term 2 is empty"}},
		{",a", []string{"term 1 is empty"}},
		{"a=b,,c", []string{"term 2 is empty"}},
		{"a=b,c=d=e", []string{`"c=d=e"`, "unexpected"}},
		{"a=b c", []string{`"a=b c"`, "unexpected"}},
		{"a in (x", []string{`"a in (x"`, "missing ')'"}},
		{"a in x", []string{`"a in x"`, "expected '('"}},
		{"a in (x y)", []string{"unexpected"}},
		{"a in (x)) ", []string{"unexpected"}},
		{"a < 3", []string{`"a < 3"`, "unknown operator"}},
		{"a foo (x)", []string{"unknown operator"}},
		{"=b", []string{"expected a label key"}},
		{"!", []string{"expected a label key after '!'"}},
		{"!a=b", []string{"unexpected"}},
		{"-a=b", []string{`"-a=b"`, "start and end"}},
		{"a=-b", []string{"label value"}},
		{"a=" + strings.Repeat("v", 64), []string{"at most 63"}},
		{"a in (ok,b@d)", []string{"b@d"}},
		{"x,a/b/c", []string{`"a/b/c"`}},
	}
	for _, tt := range tests {
		_, err := ParseSelector(tt.in)
		if err == nil {
			t.Errorf("ParseSelector(%q) succeeded, want error", tt.in)
			continue
		}
		for _, w := range tt.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ParseSelector(%q) = %q, want it to contain %q", tt.in, err, w)
			}
		}
	}
}

func TestSelectorMatches(t *testing.T) {
	labels := map[string]string{"app": "web", "tier": "front", "empty": ""}
	tests := []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"app=web", true},
		{"app==web", true},
		{"app=db", false},
		{"missing=", false},
		{"empty=", true},
		{"app!=db", true},
		{"app!=web", false},
		{"missing!=x", true},
		{"app in (db,web)", true},
		{"app in (db)", false},
		{"missing in (x)", false},
		{"app notin (db)", true},
		{"app notin (web)", false},
		{"missing notin (x)", true},
		{"app", true},
		{"missing", false},
		{"!missing", true},
		{"!app", false},
		{"app=web,tier=front", true},
		{"app=web,tier=back", false},
	}
	for _, tt := range tests {
		sel, err := ParseSelector(tt.sel)
		if err != nil {
			t.Fatalf("ParseSelector(%q): %v", tt.sel, err)
		}
		if got := sel.Matches(labels); got != tt.want {
			t.Errorf("%q.Matches(%v) = %v, want %v", tt.sel, labels, got, tt.want)
		}
	}
	if (Selector{{Key: "app", Operator: "~", Values: []string{"web"}}}).Matches(labels) {
		t.Error("a requirement with an unknown operator matched")
	}
	if !(Selector{{Key: "app", Operator: "==", Values: []string{"web"}}}).Matches(labels) {
		t.Error(`a hand-built "==" requirement did not match`)
	}
}

func TestSelectorString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"b=1,a=2", "a=2,b=1"},
		{"a==x", "a=x"},
		{" a in ( z , x , z ) ", "a in (x,z)"},
		{"a notin (b),a,!c,a!=q", "a,a!=q,a notin (b),!c"},
		{"a=", "a="},
		{"a in (x,)", "a in (,x)"},
	}
	for _, tt := range tests {
		sel, err := ParseSelector(tt.in)
		if err != nil {
			t.Fatalf("ParseSelector(%q): %v", tt.in, err)
		}
		if got := sel.String(); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSelectorFromSet(t *testing.T) {
	if s := SelectorFromSet(nil); s != nil || !s.Matches(map[string]string{"x": "y"}) {
		t.Errorf("SelectorFromSet(nil) = %v, want the empty selector", s)
	}
	s := SelectorFromSet(map[string]string{"b": "2", "a": "1"})
	if got := s.String(); got != "a=1,b=2" {
		t.Errorf("String = %q", got)
	}
	if !s.Matches(map[string]string{"a": "1", "b": "2", "c": "3"}) {
		t.Error("superset of labels did not match")
	}
	if s.Matches(map[string]string{"a": "1"}) {
		t.Error("subset of labels matched")
	}
}

func TestLabelSelectorAsSelector(t *testing.T) {
	nothing, err := LabelSelectorAsSelector(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []map[string]string{nil, {}, {"a": "b"}, {nothingKey: ""}} {
		if nothing.Matches(l) {
			t.Errorf("nil LabelSelector matched %v", l)
		}
	}
	back, err := ParseSelector(nothing.String())
	if err != nil || back.Matches(nil) || back.Matches(map[string]string{nothingKey: "x"}) {
		t.Errorf("Nothing() did not survive String/Parse: %q %v", nothing.String(), err)
	}

	empty, err := LabelSelectorAsSelector(&LabelSelector{})
	if err != nil || !empty.Matches(nil) || !empty.Matches(map[string]string{"a": "b"}) {
		t.Errorf("empty LabelSelector should match everything (err %v)", err)
	}

	ls := &LabelSelector{
		MatchLabels: map[string]string{"app": "web"},
		MatchExpressions: []LabelSelectorRequirement{
			{Key: "tier", Operator: "In", Values: []string{"front", "edge"}},
			{Key: "env", Operator: "NotIn", Values: []string{"prod"}},
			{Key: "team", Operator: "Exists"},
			{Key: "legacy", Operator: "DoesNotExist"},
		},
	}
	sel, err := LabelSelectorAsSelector(ls)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sel.String(), "app=web,env notin (prod),!legacy,team,tier in (edge,front)"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	match := map[string]string{"app": "web", "tier": "edge", "team": "x"}
	if !sel.Matches(match) {
		t.Errorf("did not match %v", match)
	}
	for _, change := range []func(map[string]string){
		func(m map[string]string) { m["app"] = "db" },
		func(m map[string]string) { m["tier"] = "back" },
		func(m map[string]string) { m["env"] = "prod" },
		func(m map[string]string) { delete(m, "team") },
		func(m map[string]string) { m["legacy"] = "" },
	} {
		m := map[string]string{"app": "web", "tier": "edge", "team": "x"}
		change(m)
		if sel.Matches(m) {
			t.Errorf("matched %v", m)
		}
	}

	bad := []struct {
		ls   LabelSelector
		want string
	}{
		{LabelSelector{MatchLabels: map[string]string{"a b": "x"}}, `matchLabels["a b"]`},
		{LabelSelector{MatchLabels: map[string]string{"a": "-x"}}, `matchLabels["a"]`},
		{LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "", Operator: "Exists"}}}, "matchExpressions[0].key"},
		{LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "a", Operator: "Exists"}, {Key: "a", Operator: "in", Values: []string{"x"}}}}, "matchExpressions[1].operator"},
		{LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "a", Operator: "In"}}}, "matchExpressions[0].values: must not be empty"},
		{LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "a", Operator: "Exists", Values: []string{"x"}}}}, "matchExpressions[0].values: must be empty"},
		{LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "a", Operator: "NotIn", Values: []string{"ok", "-no"}}}}, "matchExpressions[0].values[1]"},
	}
	for _, b := range bad {
		_, err := LabelSelectorAsSelector(&b.ls)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("LabelSelectorAsSelector(%+v) = %v, want error containing %q", b.ls, err, b.want)
		}
	}
}

func TestParseFieldSelector(t *testing.T) {
	fs, err := ParseFieldSelector(" spec.nodeName = n1 , status.phase!=Running,metadata.name==web")
	if err != nil {
		t.Fatal(err)
	}
	want := FieldSelector{
		{Field: "spec.nodeName", Operator: "=", Value: "n1"},
		{Field: "status.phase", Operator: "!=", Value: "Running"},
		{Field: "metadata.name", Operator: "=", Value: "web"},
	}
	if !reflect.DeepEqual(fs, want) {
		t.Errorf("got %#v", fs)
	}
	if got := fs.String(); got != "metadata.name=web,spec.nodeName=n1,status.phase!=Running" {
		t.Errorf("String = %q", got)
	}
	back, err := ParseFieldSelector(fs.String())
	if err != nil || back.String() != fs.String() {
		t.Errorf("round trip: %v %q", err, back.String())
	}
	if fs, err := ParseFieldSelector("spec.nodeName="); err != nil || fs[0].Value != "" {
		t.Errorf("empty value: %v %v", fs, err)
	}
	if fs, err := ParseFieldSelector(""); err != nil || fs != nil {
		t.Errorf("empty selector: %v %v", fs, err)
	}

	errs := []struct{ in, want string }{
		{"spec.foo=x", `field "spec.foo" is not selectable`},
		{"spec.nodeName", "expected field=value"},
		{"=x", "missing field name"},
		{"spec.nodeName=a,", "term 2 is empty"},
		{"spec.nodeName=a=b", "must not contain"},
	}
	for _, e := range errs {
		_, err := ParseFieldSelector(e.in)
		if err == nil || !strings.Contains(err.Error(), e.want) {
			t.Errorf("ParseFieldSelector(%q) = %v, want error containing %q", e.in, err, e.want)
		}
	}
}

func TestFieldValueAndMatches(t *testing.T) {
	pod := &Pod{ObjectMeta: ObjectMeta{Name: "web", Namespace: "default"}}
	pod.Spec.NodeName = "n1"
	pod.Status.Phase = PodRunning
	pod.Status.PodIP = "10.244.0.5"
	node := &Node{ObjectMeta: ObjectMeta{Name: "n1"}}
	node.Spec.Unschedulable = true
	cm := &ConfigMap{ObjectMeta: ObjectMeta{Name: "cfg", Namespace: "kube"}}

	tests := []struct {
		obj    Object
		field  string
		want   string
		wantOK bool
	}{
		{pod, "metadata.name", "web", true},
		{pod, "metadata.namespace", "default", true},
		{pod, "spec.nodeName", "n1", true},
		{pod, "status.phase", "Running", true},
		{pod, "status.podIP", "10.244.0.5", true},
		{pod, "spec.unschedulable", "", false},
		{node, "spec.unschedulable", "true", true},
		{node, "metadata.namespace", "", true},
		{node, "spec.nodeName", "", false},
		{cm, "metadata.name", "cfg", true},
		{cm, "status.phase", "", false},
		{pod, "spec.bogus", "", false},
	}
	for _, tt := range tests {
		got, ok := FieldValue(tt.obj, tt.field)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("FieldValue(%s, %s) = %q,%v want %q,%v", KindOf(tt.obj), tt.field, got, ok, tt.want, tt.wantOK)
		}
	}
	if v, _ := FieldValue(&Node{}, "spec.unschedulable"); v != "false" {
		t.Errorf("schedulable node: %q", v)
	}

	matches := []struct {
		sel  string
		obj  Object
		want bool
	}{
		{"", pod, true},
		{"spec.nodeName=n1", pod, true},
		{"spec.nodeName=n2", pod, false},
		{"spec.nodeName!=n2", pod, true},
		{"spec.nodeName=n1,status.phase=Pending", pod, false},
		{"spec.nodeName=n1", node, false},
		{"spec.nodeName!=n1", node, false}, // field the kind lacks never matches
		{"spec.unschedulable=true", node, true},
		{"metadata.name=cfg", cm, true},
	}
	for _, m := range matches {
		fs, err := ParseFieldSelector(m.sel)
		if err != nil {
			t.Fatal(err)
		}
		if got := fs.Matches(m.obj); got != m.want {
			t.Errorf("%q.Matches(%s) = %v, want %v", m.sel, KindOf(m.obj), got, m.want)
		}
	}
}

// genLabelToken draws a valid label value or key name from a small alphabet
// so that generated selectors and label sets overlap often.
func genLabelName() *rapid.Generator[string] {
	return rapid.SampledFrom([]string{"a", "b", "app", "x.y", "A-1", "z_9", "shoal.dev/role", "k8s.io/x"})
}

func genLabelValue() *rapid.Generator[string] {
	return rapid.SampledFrom([]string{"", "v", "w", "web", "1.0", "a-b_c"})
}

func genRequirement() *rapid.Generator[LabelRequirement] {
	return rapid.Custom(func(t *rapid.T) LabelRequirement {
		r := LabelRequirement{Key: genLabelName().Draw(t, "key")}
		r.Operator = rapid.SampledFrom([]string{OpEquals, OpNotEquals, OpIn, OpNotIn, OpExists, OpDoesNotExist}).Draw(t, "op")
		switch r.Operator {
		case OpEquals, OpNotEquals:
			r.Values = []string{genLabelValue().Draw(t, "value")}
		case OpIn, OpNotIn:
			r.Values = rapid.SliceOfN(genLabelValue(), 1, 4).Draw(t, "values")
		}
		return r
	})
}

// renderLoosely writes a selector in a non-canonical but valid spelling, with
// random spacing and "==", to exercise the parser.
func renderLoosely(t *rapid.T, s Selector) string {
	sp := func(name string) string { return rapid.SampledFrom([]string{"", " ", "  "}).Draw(t, name) }
	var parts []string
	for _, r := range s {
		var p string
		switch r.Operator {
		case OpEquals:
			p = r.Key + sp("s1") + rapid.SampledFrom([]string{"=", "=="}).Draw(t, "eq") + sp("s2") + r.Values[0]
		case OpNotEquals:
			p = r.Key + sp("s1") + "!=" + sp("s2") + r.Values[0]
		case OpIn, OpNotIn:
			p = r.Key + " " + r.Operator + sp("s1") + "(" + strings.Join(r.Values, ","+sp("s3")) + ")"
		case OpExists:
			p = r.Key
		case OpDoesNotExist:
			p = "!" + sp("s1") + r.Key
		}
		parts = append(parts, sp("lead")+p+sp("trail"))
	}
	return strings.Join(parts, ",")
}

func TestSelectorStringRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sel := Selector(rapid.SliceOfN(genRequirement(), 0, 5).Draw(t, "selector"))
		canon := sel.String()
		parsed, err := ParseSelector(canon)
		if err != nil {
			t.Fatalf("ParseSelector(%q): %v", canon, err)
		}
		if again := parsed.String(); again != canon {
			t.Fatalf("String is not stable: %q -> %q", canon, again)
		}
		loose := renderLoosely(t, sel)
		fromLoose, err := ParseSelector(loose)
		if err != nil {
			t.Fatalf("ParseSelector(%q): %v", loose, err)
		}
		if fromLoose.String() != canon {
			t.Fatalf("loose %q parsed to %q, want %q", loose, fromLoose.String(), canon)
		}
		// Parsing the canonical form must select exactly the same label sets.
		labels := rapid.MapOfN(genLabelName(), genLabelValue(), 0, 5).Draw(t, "labels")
		if got, want := parsed.Matches(labels), sel.Matches(labels); got != want {
			t.Fatalf("%q matches %v: parsed %v, original %v", canon, labels, got, want)
		}
	})
}

func TestFieldSelectorStringRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var fs FieldSelector
		for range rapid.IntRange(0, 4).Draw(t, "n") {
			fs = append(fs, FieldRequirement{
				Field:    rapid.SampledFrom(selectableFields).Draw(t, "field"),
				Operator: rapid.SampledFrom([]string{"=", "!="}).Draw(t, "op"),
				Value:    rapid.SampledFrom([]string{"", "n1", "Running", "true"}).Draw(t, "value"),
			})
		}
		back, err := ParseFieldSelector(fs.String())
		if err != nil {
			t.Fatalf("ParseFieldSelector(%q): %v", fs.String(), err)
		}
		if back.String() != fs.String() {
			t.Fatalf("%q -> %q", fs.String(), back.String())
		}
	})
}
