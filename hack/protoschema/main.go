// Command protoschema writes lib/kube/proto_schema_gen.inc: for the Kubernetes types the informer
// can list as protobuf (issue #18), every message's fields with their protobuf number and wire
// kind, their JSON name, and what encoding/json does with them (omitempty, omitzero, pointer,
// inline, map, slice). It reads the Go types by reflection, so the table says what the API
// server's own types say (docs/decisions.md, "The informer lists pods as protobuf").
//
//	go run . > ../../lib/kube/proto_schema_gen.inc
//	go run . -corpus ../../tests/data/proto   (random pods for the unit tests; corpus.go)
package main

import (
	"flag"
	"fmt"
	"os"
	"reflect"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Types with their own protobuf and JSON encodings, decoded by hand in lib/kube/proto_decode.cpp.
var special = map[reflect.Type]string{
	reflect.TypeOf(metav1.Time{}):          "kTime",
	reflect.TypeOf(metav1.MicroTime{}):     "kMicroTime",
	reflect.TypeOf(resource.Quantity{}):    "kQuantity",
	reflect.TypeOf(intstr.IntOrString{}):   "kIntOrString",
	reflect.TypeOf(metav1.Duration{}):      "kDuration",
	reflect.TypeOf(runtime.RawExtension{}): "kRawJson",
	reflect.TypeOf(metav1.FieldsV1{}):      "kRawJson",
}

type field struct {
	number       int
	json         string
	kind         string
	flags        []string
	message      int // for kMessage, or a map's kMessage value
	valueKind    string
	valueMessage int
}

type message struct {
	name   string
	fields []field
}

var (
	messages []*message
	index    = map[reflect.Type]int{}
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "protoschema: "+format+"\n", args...)
	os.Exit(1)
}

// scalar returns the table kind of a non-message Go type and its protobuf wire type name.
func scalar(t reflect.Type, wire string, where string) string {
	switch t.Kind() {
	case reflect.String:
		return "kString"
	case reflect.Bool:
		return "kBool"
	case reflect.Int32:
		return "kInt32"
	case reflect.Int64:
		return "kInt64"
	case reflect.Uint32:
		return "kUint32"
	case reflect.Uint64:
		return "kUint64"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "kBytes"
		}
	}
	fail("%s: unsupported type %s (wire %s)", where, t, wire)
	return ""
}

// kindOf returns the kind and message index of a field's element type.
func kindOf(t reflect.Type, wire, where string) (string, int) {
	if k, ok := special[t]; ok {
		return k, -1
	}
	if t.Kind() == reflect.Struct {
		return "kMessage", visit(t)
	}
	return scalar(t, wire, where), -1
}

func visit(t reflect.Type) int {
	if i, ok := index[t]; ok {
		return i
	}
	m := &message{name: t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:] + "." + t.Name()}
	index[t] = len(messages)
	messages = append(messages, m)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		ptag := f.Tag.Get("protobuf")
		jtag := f.Tag.Get("json")
		where := m.name + "." + f.Name
		if ptag == "" {
			// Not on the wire (TypeMeta, inlined at the top of an object, is the envelope's).
			if f.Anonymous || jtag == "-" {
				continue
			}
			fail("%s: a field without a protobuf tag", where)
		}
		if jtag == "-" {
			fail("%s: on the wire but not in JSON", where)
		}
		parts := strings.Split(ptag, ",")
		num, err := strconv.Atoi(parts[1])
		if err != nil {
			fail("%s: protobuf tag %q", where, ptag)
		}
		wire := parts[0]
		jparts := strings.Split(jtag, ",")
		name := jparts[0]
		fl := field{number: num, message: -1, valueMessage: -1, valueKind: "kString"}
		for _, o := range jparts[1:] {
			switch o {
			case "omitempty":
				fl.flags = append(fl.flags, "kOmitEmpty")
			case "omitzero":
				fl.flags = append(fl.flags, "kOmitZero")
			case "inline", "":
			default:
				fail("%s: json option %q", where, o)
			}
		}
		ft := f.Type
		if f.Anonymous && name == "" {
			if ft.Kind() != reflect.Struct {
				fail("%s: an inline field that is not a struct", where)
			}
			fl.flags = append(fl.flags, "kInline")
		} else if name == "" {
			name = f.Name // encoding/json's name for a field without one
		}
		fl.json = name
		if ft.Kind() == reflect.Pointer {
			fl.flags = append(fl.flags, "kPointer")
			ft = ft.Elem()
		}
		switch {
		case special[ft] != "":
			fl.kind, fl.message = kindOf(ft, wire, where)
		case ft.Kind() == reflect.Map:
			if ft.Key().Kind() != reflect.String {
				fail("%s: a map whose key is not a string", where)
			}
			fl.kind = "kMap"
			fl.valueKind, fl.valueMessage = kindOf(ft.Elem(), wire, where)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() != reflect.Uint8:
			fl.flags = append(fl.flags, "kRepeated")
			et := ft.Elem()
			if et.Kind() == reflect.Pointer || et.Kind() == reflect.Slice && et.Elem().Kind() != reflect.Uint8 || et.Kind() == reflect.Map {
				fail("%s: a slice of %s", where, et)
			}
			fl.kind, fl.message = kindOf(et, wire, where)
		default:
			fl.kind, fl.message = kindOf(ft, wire, where)
		}
		if fl.kind == "kMessage" && fl.message < 0 {
			fail("%s: no message", where)
		}
		m.fields = append(m.fields, fl)
	}
	// Two members of one name at one level would make encoding/json drop both: refuse them.
	seen := map[string]bool{}
	for _, f := range m.fields {
		if seen[f.json] && f.json != "" {
			fail("%s: two members named %q", m.name, f.json)
		}
		seen[f.json] = true
	}
	return index[t]
}

// moduleVersion is the version of module m this program was built with.
func moduleVersion(m string) string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == m {
				return d.Version
			}
		}
	}
	fail("no build information for %s", m)
	return ""
}

func main() {
	dir := flag.String("corpus", "", "write a test corpus of random pods into this directory instead")
	n := flag.Int("n", 60, "pods in the corpus")
	seed := flag.Int64("seed", 18, "the corpus's random seed")
	flag.Parse()
	if *dir != "" {
		corpus(*dir, *n, *seed)
		return
	}
	roots := []struct {
		name string
		v    any
	}{
		{"PodList", corev1.PodList{}},
		{"Status", metav1.Status{}},
	}
	rootIndex := map[string]int{}
	for _, r := range roots {
		rootIndex[r.name] = visit(reflect.TypeOf(r.v))
	}
	fmt.Println("// Generated by hack/protoschema (go run . > ../../lib/kube/proto_schema_gen.inc) from")
	fmt.Printf("// k8s.io/api and k8s.io/apimachinery %s. Do not edit.\n", moduleVersion("k8s.io/api"))
	fmt.Println("// clang-format off")
	for i, m := range messages {
		fmt.Printf("constexpr Field kFields%d[] = {  // %s\n", i, m.name)
		for _, f := range m.fields {
			flags := "0"
			if len(f.flags) > 0 {
				flags = strings.Join(f.flags, " | ")
			}
			fmt.Printf("    {%d, %q, Kind::%s, %s, %d, Kind::%s, %d},\n", f.number, f.json, f.kind, flags, f.message,
				f.valueKind, f.valueMessage)
		}
		if len(m.fields) == 0 {
			fmt.Println("    {0, \"\", Kind::kString, 0, -1, Kind::kString, -1},")
		}
		fmt.Println("};")
	}
	fmt.Printf("constexpr Message kMessages[] = {\n")
	for i, m := range messages {
		fmt.Printf("    {%q, kFields%d, %d},\n", m.name, i, len(m.fields))
	}
	fmt.Println("};")
	names := make([]string, 0, len(rootIndex))
	for n := range rootIndex {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("constexpr int k%sMessage = %d;\n", n, rootIndex[n])
	}
	fmt.Println("// clang-format on")
}
