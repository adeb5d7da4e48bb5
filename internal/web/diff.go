package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/stepgate/stepgate/internal/plan"
)

// changeView is one change on the review page with the attributes that
// differ between before and after.
type changeView struct {
	Address         string
	PreviousAddress string
	Type            string
	Provider        string
	Action          string
	ActionReason    string
	Reasons         []string // the findings that name it
	Rows            []diffRow
	MoreRows        int // rows not shown
	Hidden          int // sensitive attributes: masked on both sides, a change cannot be shown
	Undecodable     bool
}

// diffRow is one attribute that differs.
type diffRow struct {
	Path          string
	Before, After cell
	Forces        bool // the plan says a change here forces replacement
}

// cell is a value as shown: Text in code, or a Note in words (absent,
// null, masked, unknown until apply).
type cell struct {
	Text string
	Note string
}

const (
	maxRows      = 200
	maxValueText = 4000
	noteAbsent   = "—"
	noteNull     = "null"
	noteUnknown  = "(known after apply)"
)

func newChangeView(ch *plan.Change) *changeView {
	v := &changeView{
		Address: ch.Address, PreviousAddress: ch.PreviousAddress, Type: ch.Type, Provider: ch.Provider,
		Action: string(ch.Action), ActionReason: ch.ActionReason,
	}
	before, after, err := ch.Values()
	if err != nil {
		v.Undecodable = true
		return v
	}
	bm, am := map[string]any{}, map[string]any{}
	if before != nil {
		flatten(before, "", bm)
	}
	if after != nil {
		flatten(after, "", am)
	}
	expandDocuments(bm, am)
	unknown := ch.AfterUnknown
	paths := slices.Concat(slices.Collect(maps.Keys(bm)), slices.Collect(maps.Keys(am)), unknown)
	slices.Sort(paths)
	paths = slices.Compact(paths)
	for _, p := range paths {
		b, inB := bm[p]
		a, inA := am[p]
		isUnknown := underAny(p, unknown)
		if !isUnknown && inB && inA && sameValue(b, a) {
			if isMask(b) {
				v.Hidden++
			}
			continue
		}
		row := diffRow{Path: p, Forces: underAny(p, ch.ReplacePaths)}
		row.Before = cellOf(b, inB)
		if isUnknown {
			row.After = cell{Note: noteUnknown}
		} else {
			row.After = cellOf(a, inA)
		}
		if len(v.Rows) >= maxRows {
			v.MoreRows++
			continue
		}
		v.Rows = append(v.Rows, row)
	}
	return v
}

// docSeparator joins the path of an attribute holding a JSON document (an
// IAM policy) and a path inside that document.
const docSeparator = " › "

// expandDocuments replaces each attribute whose value is a JSON document
// (an object or array written as a string, as IAM, bucket and key policies
// are) on both sides, and differs, with the leaves of the two documents:
// the page then shows what changed inside it ("s3:GetObject" becoming
// "s3:*") rather than two whole documents to compare by eye. Leaves are
// kept as their JSON text, so a string shows quoted.
func expandDocuments(before, after map[string]any) {
	for p, b := range before {
		a, ok := after[p]
		if !ok || sameValue(a, b) {
			continue
		}
		bd, okb := jsonDocument(b)
		ad, oka := jsonDocument(a)
		if !okb || !oka {
			continue
		}
		delete(before, p)
		delete(after, p)
		for side, doc := range map[*map[string]any]any{&before: bd, &after: ad} {
			leaves := map[string]any{}
			flatten(doc, "", leaves)
			for k, v := range leaves {
				raw, err := json.Marshal(v)
				if err != nil {
					continue
				}
				(*side)[p+docSeparator+k] = json.RawMessage(raw)
			}
		}
	}
}

// jsonDocument decodes v when it is a string holding a JSON object or
// array of reasonable size.
func jsonDocument(v any) (any, bool) {
	s, ok := v.(string)
	if !ok {
		return nil, false
	}
	t := strings.TrimSpace(s)
	if len(t) < 2 || len(t) > 64<<10 || (t[0] != '{' && t[0] != '[') {
		return nil, false
	}
	dec := json.NewDecoder(strings.NewReader(t))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return nil, false
	}
	return doc, true
}

// flatten writes the leaves of a value by path, in the path syntax of
// package plan: dots for attributes, [n] for elements, ["k"] for keys
// that need quoting. Empty objects and lists are leaves too.
func flatten(v any, path string, out map[string]any) {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 {
			out[plan.RootPath(path)] = t
			return
		}
		for k, x := range t {
			flatten(x, plan.JoinKey(path, k), out)
		}
	case []any:
		if len(t) == 0 {
			out[plan.RootPath(path)] = t
			return
		}
		for i, x := range t {
			flatten(x, plan.JoinIndex(path, i), out)
		}
	default:
		out[plan.RootPath(path)] = v
	}
}

// underAny reports whether path is one of prefixes or inside one.
func underAny(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if p == "(root)" || path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
			return true
		}
	}
	return false
}

func isMask(v any) bool { s, ok := v.(string); return ok && s == plan.Mask }

func sameValue(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// cellOf shows a value. A masked value stays masked: the page never has
// more than the plan gave the server.
func cellOf(v any, present bool) cell {
	if !present {
		return cell{Note: noteAbsent}
	}
	switch t := v.(type) {
	case nil:
		return cell{Note: noteNull}
	case string:
		if t == plan.Mask {
			return cell{Note: plan.Mask}
		}
		if t == "" {
			return cell{Text: `""`}
		}
		return cell{Text: truncate(prettyJSONString(t))}
	case json.Number:
		return cell{Text: t.String()}
	case json.RawMessage: // a leaf inside a JSON document, as JSON
		return cell{Text: truncate(string(t))}
	case bool:
		return cell{Text: strconv.FormatBool(t)}
	case map[string]any:
		return cell{Text: "{}"}
	case []any:
		return cell{Text: "[]"}
	}
	return cell{Text: truncate(fmt.Sprint(v))}
}

// prettyJSONString indents a string that holds a JSON object or array
// (IAM policies, mostly), so that a reviewer can read it.
func prettyJSONString(s string) string {
	t := strings.TrimSpace(s)
	if len(t) < 2 || len(t) > 64<<10 || (t[0] != '{' && t[0] != '[') || !json.Valid([]byte(t)) {
		return s
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(t), "", "  "); err != nil {
		return s
	}
	return buf.String()
}

func truncate(s string) string {
	if len(s) <= maxValueText {
		return s
	}
	cut := maxValueText
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d more bytes)", len(s)-cut)
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
