package main

// The corpus mode: random Pods (every field filled, sometimes, by sigs.k8s.io/randfill), each
// encoded by apimachinery's own codecs as the API server encodes a list — protobuf and JSON —
// after a protobuf round trip (the server's objects come from etcd as protobuf, so an empty slice
// is nil and a Time has no nanoseconds). tests/unit/proto_list_test.cpp decodes both and expects
// the same MessagePack (tests/data/proto/).

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/randfill"
)

var quantities = []string{"0", "1", "100m", "1Gi", "1.5", "2e3", "128974848", "129e6", "123Mi", "-5", "0.1m"}

func randomString(c randfill.Continue) string {
	switch c.Intn(8) {
	case 0:
		return ""
	case 1: // invalid UTF-8, which encoding/json replaces with U+FFFD
		return "bad\xff\xfe" + string([]byte{0xed, 0xa0, 0x80}) + "x\xe2\x82"
	case 2:
		return "<tag> & \"quote\" \\ \u2028 \x01 ünïcødé 日本"
	case 3:
		return c.String(40)
	default:
		return fmt.Sprintf("s-%d", c.Intn(1000))
	}
}

func corpus(dir string, n int, seed int64) {
	f := randfill.NewWithSeed(seed).NilChance(0.35).NumElements(0, 2).MaxDepth(12).Funcs(
		func(s *string, c randfill.Continue) { *s = randomString(c) },
		func(q *resource.Quantity, c randfill.Continue) {
			*q = resource.MustParse(quantities[c.Intn(len(quantities))])
		},
		func(t *metav1.Time, c randfill.Continue) {
			switch c.Intn(4) {
			case 0:
				*t = metav1.Time{}
			case 1:
				*t = metav1.Unix(0, 0)
			default:
				*t = metav1.Unix(c.Int63n(4_000_000_000)-1_000_000_000, c.Int63n(1e9))
			}
		},
		func(x *intstr.IntOrString, c randfill.Continue) {
			if c.Bool() {
				*x = intstr.FromString(randomString(c))
			} else {
				*x = intstr.FromInt32(c.Int31() - 1<<30)
			}
		},
		func(m *metav1.FieldsV1, c randfill.Continue) { m.Raw = []byte(`{"f:metadata":{"f:labels":{}}}`) },
		func(r *runtime.RawExtension, c randfill.Continue) { r.Raw = nil },
		func(b *[]byte, c randfill.Continue) {
			if c.Bool() {
				*b = nil
			} else {
				*b = []byte(c.String(7))
			}
		},
	)
	pb := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	js := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{})
	list := &corev1.PodList{}
	list.ResourceVersion = "12345"
	list.Continue = "next-page"
	list.Kind, list.APIVersion = "PodList", "v1" // as the API server sets them
	r := rand.New(rand.NewSource(seed))
	for i := 0; i < n; i++ {
		var p corev1.Pod
		f.Fill(&p)
		p.TypeMeta = metav1.TypeMeta{}
		p.Name = fmt.Sprintf("pod-%d", i)
		// Names, namespaces and versions the server would accept (the rest stays random).
		p.Namespace = ""
		if r.Intn(2) == 0 {
			p.Namespace = "ns"
		}
		p.ResourceVersion = fmt.Sprint(1000 + i)
		// As the server holds it: through protobuf once.
		raw, err := p.Marshal()
		if err != nil {
			fail("marshal: %v", err)
		}
		var back corev1.Pod
		if err := back.Unmarshal(raw); err != nil {
			fail("unmarshal: %v", err)
		}
		list.Items = append(list.Items, back)
	}
	var pbuf, jbuf bytes.Buffer
	if err := pb.Encode(list, &pbuf); err != nil {
		fail("protobuf: %v", err)
	}
	if err := js.Encode(list, &jbuf); err != nil {
		fail("json: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pods.pb"), pbuf.Bytes(), 0o644); err != nil {
		fail("%v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pods.json"), jbuf.Bytes(), 0o644); err != nil {
		fail("%v", err)
	}
	// A Status, as the server sends an error to a client that asked for protobuf.
	st := &metav1.Status{Status: metav1.StatusFailure, Message: "too old resource version: 1 (2)", Reason: metav1.StatusReasonExpired,
		Code: 410, Details: &metav1.StatusDetails{Name: "x", RetryAfterSeconds: 3}}
	st.Kind, st.APIVersion = "Status", "v1"
	var sbuf bytes.Buffer
	if err := pb.Encode(st, &sbuf); err != nil {
		fail("status: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "status.pb"), sbuf.Bytes(), 0o644); err != nil {
		fail("%v", err)
	}
	fmt.Fprintf(os.Stderr, "protoschema: %d pods: protobuf %d bytes, JSON %d bytes\n", n, pbuf.Len(), jbuf.Len())
}
