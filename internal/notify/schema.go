package notify

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Kind is the type of one field of an event's data, as conditions see it.
type Kind string

// Field kinds.
const (
	KindString  Kind = "string"
	KindInt     Kind = "int"
	KindBool    Kind = "bool"
	KindInts    Kind = "[]int"
	KindStrings Kind = "[]string"
)

// Field is one documented field of an event type's data.
type Field struct {
	Name string
	Kind Kind
	Doc  string
}

// EventType is one event a rule can be on, with its documented data.
type EventType struct {
	Type   string
	Doc    string
	Fields []Field
}

var runFields = []Field{
	{"run", KindInt, "the run id (0 for a record of missed or skipped occurrences that became no run)"},
	{"job", KindString, "the job's name"},
	{"state", KindString, "the run's state: succeeded, failed, canceled, skipped, missed, queued (retrying), running (late, long)"},
	{"attempt", KindInt, "the attempt that ended (run.retrying: the one that failed)"},
	{"max_attempts", KindInt, "attempts the run may make"},
	{"reason", KindString, "why it ended so (\"exit status 3\", \"node b lost during attempt 1\")"},
	{"trigger", KindString, "schedule or manual"},
	{"exit_code", KindInt, "the command's exit code; -1 when there was none"},
	{"scheduled_at", KindString, "the scheduled time, RFC 3339 UTC; \"\" for an on-demand run"},
}

func with(base []Field, more ...Field) []Field { return append(slices.Clone(base), more...) }

// Schema is every event type a rule may name, with its data. It is the contract of
// conditions and templates: a condition naming a field not here is refused at apply.
var Schema = []EventType{
	{"node.joined", "a node started, or came back after it was declared lost", []Field{
		{"node", KindString, "the node"}}},
	{"node.lost", "the primary declared a node lost: silent for too long, or its process dead. A dead primary is a lost node too: its successor raises this for it", []Field{
		{"node", KindString, "the lost node"},
		{"requeued", KindInts, "runs queued again for their next attempt"},
		{"failed", KindInts, "runs that failed with no attempt left"},
		{"dead", KindBool, "true: its process was seen dead (liveness lock free); false: it was silent"},
		{"mode", KindString, "the node's mode when it was lost (primary, standby, worker …)"},
		{"was_primary", KindBool, "the node was the primary (or the suspended primary)"},
		{"reason", KindString, "why it was declared lost"}}},
	{"node.stopped", "a node shut down gracefully", []Field{
		{"node", KindString, "the node"}}},
	{"primary.changed", "a node became primary", []Field{
		{"epoch", KindInt, "the new term's epoch"},
		{"previous", KindString, "the node that held the role before (\"\" if none)"},
		{"to", KindString, "the node that took the role"},
		{"took_ms", KindInt, "how long the takeover took, in milliseconds: from the new primary first seeing the lease free to holding it (0 when it was handed over or still held)"},
		{"suspended", KindBool, "the role is suspended by an operator: it fires and dispatches nothing"},
		{"reason", KindString, "how the role was taken: \"takeover\" (the lease was free or expired), \"crash\" (its holder's process was dead), \"handover\" (resigned to this node), \"start\""}}},
	{"primary.suspended", "an operator suspended the primary role", []Field{
		{"node", KindString, "the primary"},
		{"by", KindString, "who suspended it"}}},
	{"run.failed", "a run failed its last attempt", runFields},
	{"run.retrying", "a run's attempt failed and the run is queued for its next attempt", runFields},
	{"run.succeeded", "a run succeeded", runFields},
	{"run.canceled", "a run was canceled", runFields},
	{"run.missed", "occurrences were missed (the misfire policy did not run them)", with(runFields,
		Field{"scheduled_until", KindString, "the last occurrence of the stretch"},
		Field{"occurrences", KindInt, "how many occurrences"})},
	{"run.skipped", "a run or occurrences were skipped (overlap forbid, a blackout)", with(runFields,
		Field{"scheduled_until", KindString, "records: the last occurrence of the stretch"},
		Field{"occurrences", KindInt, "records: how many occurrences"})},
	{"run.late", "a run started more than its job's late_after after its scheduled time", with(runFields,
		Field{"late_seconds", KindInt, "how late it started"},
		Field{"late_after_seconds", KindInt, "the job's late_after"})},
	{"run.long", "a running run passed its job's long_after, or twice its median duration over its job's last 20 succeeded runs", with(runFields,
		Field{"running_seconds", KindInt, "how long it had been running"},
		Field{"limit_seconds", KindInt, "the limit it passed"},
		Field{"median_seconds", KindInt, "the median of the last succeeded runs (0: fewer than 3)"})},
	{"delivery.failed", "a delivery record (a run's [[deliver]] entry or a notification) ran out of attempts or cannot succeed", []Field{
		{"delivery", KindInt, "the record's id"},
		{"key", KindString, "its idempotency key"},
		{"run", KindInt, "its run (0 for a notification)"},
		{"job", KindString, "its run's job"},
		{"entry", KindInt, "the entry (or the rule's channel) index"},
		{"channel", KindString, "email, webhook or directory"},
		{"target", KindString, "recipients, URL or path"},
		{"attempts", KindInt, "attempts made"},
		{"error", KindString, "the last error"},
		{"response", KindString, "the channel's last answer"},
		{"notification", KindInt, "the notification it sent (0 for a run's delivery)"},
		{"rule", KindString, "the rule of that notification (\"\" for a run's delivery); a rule is never notified of its own"}}},
	{"output.lost", "outputs of a lost node have no verified copy left", []Field{
		{"node", KindString, "the lost node"},
		{"count", KindInt, "how many outputs"},
		{"outputs", KindStrings, "RUN/ATTEMPT/NAME of at most 100 of them"}}},
	{"sync.failed", "reserved for the DR-site sync (not raised by this release)", []Field{
		{"site", KindString, "the DR site"},
		{"error", KindString, "why"}}},
	{"sync.succeeded", "reserved for the DR-site sync (not raised by this release)", []Field{
		{"site", KindString, "the DR site"}}},
	{"job.applied", "a job was created or replaced", []Field{
		{"job", KindString, "the job"},
		{"created", KindBool, "it was new"},
		{"paused", KindBool, "it is paused"},
		{"schedules", KindInt, "how many schedules it has"}}},
	{"job.deleted", "a job was deleted", []Field{
		{"job", KindString, "the job"}}},
}

// TopFields are the fields every event has, beside data.
var TopFields = []Field{
	{"id", KindInt, "the event's id (increasing)"},
	{"type", KindString, "the event's type"},
	{"node", KindString, "the node the event is about: data.node when the type has it, else the node that recorded it"},
	{"by", KindString, "the node that recorded the event"},
	{"at", KindString, "when, RFC 3339 UTC"},
	{"message", KindString, "the event's one-line description"},
}

// eventType returns the schema of typ.
func eventType(typ string) (EventType, bool) {
	i := slices.IndexFunc(Schema, func(e EventType) bool { return e.Type == typ })
	if i < 0 {
		return EventType{}, false
	}
	return Schema[i], true
}

// TypeNames lists the event types rules may name.
func TypeNames() []string {
	out := make([]string, len(Schema))
	for i, e := range Schema {
		out[i] = e.Type
	}
	return out
}

var kindTypes = map[Kind]reflect.Type{
	KindString: reflect.TypeFor[string](), KindInt: reflect.TypeFor[int](), KindBool: reflect.TypeFor[bool](),
	KindInts: reflect.TypeFor[[]int](), KindStrings: reflect.TypeFor[[]string](),
}

// envType builds the struct a condition is compiled against for events of types:
// the top fields, and data with the union of their data fields. A field two types
// give different kinds is refused (none does; the check keeps it so).
func envType(types []string) (reflect.Type, error) {
	var fields []Field
	seen := map[string]Kind{}
	for _, typ := range types {
		et, ok := eventType(typ)
		if !ok {
			return nil, fmt.Errorf("unknown event type %q", typ)
		}
		for _, f := range et.Fields {
			if k, ok := seen[f.Name]; ok {
				if k != f.Kind {
					return nil, fmt.Errorf("data.%s is %s in one event type and %s in another", f.Name, k, f.Kind)
				}
				continue
			}
			seen[f.Name] = f.Kind
			fields = append(fields, f)
		}
	}
	data := reflect.StructOf(structFields(fields))
	top := structFields(TopFields)
	top = append(top, reflect.StructField{Name: "Data", Type: data, Tag: `expr:"data"`})
	return reflect.StructOf(top), nil
}

func structFields(fs []Field) []reflect.StructField {
	out := make([]reflect.StructField, len(fs))
	for i, f := range fs {
		out[i] = reflect.StructField{Name: goName(i, f.Name), Type: kindTypes[f.Kind], Tag: reflect.StructTag(`expr:"` + f.Name + `"`)}
	}
	return out
}

// goName is an exported Go field name for a schema field (expr sees the tag).
func goName(i int, name string) string {
	return fmt.Sprintf("F%d_%s", i, strings.ReplaceAll(name, ".", "_"))
}

// envValue fills a value of envType t from an event.
func envValue(t reflect.Type, ev Event) reflect.Value {
	v := reflect.New(t).Elem()
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("expr")
		if name == "data" {
			d := v.Field(i)
			for j := range f.Type.NumField() {
				df := f.Type.Field(j)
				setField(d.Field(j), df.Tag.Get("expr"), ev.Data[df.Tag.Get("expr")])
			}
			continue
		}
		setField(v.Field(i), name, ev.top(name))
	}
	return v
}

// setField converts a decoded JSON value into field f; what does not fit stays zero
// (exit_code: -1 when absent or null).
func setField(f reflect.Value, name string, x any) {
	switch f.Kind() {
	case reflect.String:
		if s, ok := x.(string); ok {
			f.SetString(s)
		}
	case reflect.Bool:
		if b, ok := x.(bool); ok {
			f.SetBool(b)
		}
	case reflect.Int:
		n, ok := toInt(x)
		if !ok && name == "exit_code" {
			n = -1
		}
		f.SetInt(n)
	case reflect.Slice:
		xs, _ := x.([]any)
		s := reflect.MakeSlice(f.Type(), 0, len(xs))
		for _, e := range xs {
			if f.Type().Elem().Kind() == reflect.Int {
				if n, ok := toInt(e); ok {
					s = reflect.Append(s, reflect.ValueOf(int(n)))
				}
			} else if str, ok := e.(string); ok {
				s = reflect.Append(s, reflect.ValueOf(str))
			}
		}
		f.Set(s)
	}
}

func toInt(x any) (int64, bool) {
	switch n := x.(type) {
	case float64:
		return int64(n), true
	case int:
		return int64(n), true
	case int64:
		return n, true
	}
	return 0, false
}

// Event is an event as rules see it.
type Event struct {
	ID      int64
	Type    string
	Node    string // the node it is about (data.node when there is one)
	By      string // the node that recorded it
	At      time.Time
	Message string
	Data    map[string]any
}

func (e Event) top(name string) any {
	switch name {
	case "id":
		return float64(e.ID)
	case "type":
		return e.Type
	case "node":
		return e.Node
	case "by":
		return e.By
	case "at":
		return e.At.UTC().Format(time.RFC3339Nano)
	case "message":
		return e.Message
	}
	return nil
}
