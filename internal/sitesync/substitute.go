package sitesync

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// addressFields are the fields of a job or rule definition whose strings may hold an
// address: a command's argv, env and working directory, an http job's url, delivery and
// rule webhooks, delivery directories, and a host wherever one is named.
var addressFields = []string{"argv", "env", "dir", "url", "webhook", "directory", "host"}

// Substitute rewrites every whole occurrence of each From into its To in the address
// fields of a JSON definition, and returns the definition and what it rewrote ("path:
// old → new"). An occurrence is whole when no letter, digit, '-' or '_' touches it (so
// 10.0.0.5 does not match in 10.0.0.50) and it is not followed by a dot and a digit.
func Substitute(def []byte, subs []Substitution) ([]byte, []string, error) {
	if len(subs) == 0 || len(def) == 0 {
		return def, nil, nil
	}
	var v any
	if err := json.Unmarshal(def, &v); err != nil {
		return nil, nil, fmt.Errorf("decode definition: %w", err)
	}
	var rewritten []string
	v = walk(v, "", false, subs, &rewritten)
	if len(rewritten) == 0 {
		return def, nil, nil
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, nil, fmt.Errorf("encode definition: %w", err)
	}
	return out, rewritten, nil
}

func walk(v any, path string, inAddress bool, subs []Substitution, rw *[]string) any {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			x[k] = walk(x[k], join(path, k), inAddress || slices.Contains(addressFields, k), subs, rw)
		}
		return x
	case []any:
		for i := range x {
			x[i] = walk(x[i], join(path, strconv.Itoa(i)), inAddress, subs, rw)
		}
		return x
	case string:
		if !inAddress {
			return x
		}
		out := replaceAll(x, subs)
		if out != x {
			*rw = append(*rw, fmt.Sprintf("%s: %s → %s", path, x, out))
		}
		return out
	}
	return v
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// replaceAll applies each substitution in turn, to whole occurrences only.
func replaceAll(s string, subs []Substitution) string {
	for _, sub := range subs {
		if sub.From != "" {
			s = replaceWhole(s, sub.From, sub.To)
		}
	}
	return s
}

func replaceWhole(s, from, to string) string {
	var b strings.Builder
	last := 0
	for i := 0; i <= len(s)-len(from); {
		j := strings.Index(s[i:], from)
		if j < 0 {
			break
		}
		j += i
		end := j + len(from)
		left := j == 0 || !touches(s[j-1])
		right := end == len(s) || !touches(s[end]) && !(s[end] == '.' && end+1 < len(s) && s[end+1] >= '0' && s[end+1] <= '9')
		if !left || !right {
			i = j + 1
			continue
		}
		b.WriteString(s[last:j])
		b.WriteString(to)
		last, i = end, end
	}
	b.WriteString(s[last:])
	return b.String()
}

// touches reports whether c would make an occurrence next to it part of a longer name.
func touches(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}
