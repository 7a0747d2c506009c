// The controller-runtime peer of graydebug-webhook (issue #10): the same injection of the same
// dlv-server and graydebug-agent sidecars, written the way a controller-runtime user writes a
// mutating webhook — webhook.Server + admission.Webhook, the pod decoded into corev1.Pod, mutated,
// re-encoded, and the JSON Patch built by diffing (admission.PatchResponseFromRaw).
//
// With --fixed-patch it is the second peer of issue #18 instead: a plain net/http server that only
// parses the AdmissionReview (encoding/json into admissionv1.AdmissionReview, the pod left raw) and
// answers with a fixed patch (graydebug's for the 2 KB body) and the request's uid — the cost of
// Go's HTTPS and JSON with no injection work at all.
//
// Only the decisions the benchmark bodies exercise are reproduced: selection label, opt-out,
// already injected, hostNetwork, target container (annotation or first), image overrides, port
// conflicts, annotations only where absent. No circuit breakers or Pod Security lookups
// (graydebug-webhook runs standalone in the benchmark too).
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	ctrl "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

const (
	selectKey    = "graydebug.io/inject"
	selectValue  = "true"
	injectedKey  = "graydebug.io/injected"
	statusKey    = "graydebug.io/status"
	targetKey    = "graydebug.io/target-container"
	dlvImageKey  = "graydebug.io/dlv-image"
	agentImgKey  = "graydebug.io/agent-image"
	defaultCtKey = "kubectl.kubernetes.io/default-container"
	dlvName      = "dlv-server"
	agentName    = "graydebug-agent"
	image        = "graydebug/graydebug:latest"
	agentBinary  = "/usr/local/bin/graydebug-agent"
	dlvPort      = 2345
	agentPort    = 9102
)

type injector struct {
	decoder admission.Decoder
	version string
}

func ptr[T any](v T) *T { return &v }

func resources(reqCPU, reqMem, limCPU, limMem string) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(reqCPU), corev1.ResourceMemory: resource.MustParse(reqMem)},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(limCPU), corev1.ResourceMemory: resource.MustParse(limMem)},
	}
}

func sidecars(target, dlvImage, agentImage string) (corev1.Container, corev1.Container) {
	targetEnv := corev1.EnvVar{Name: "GRAYDEBUG_TARGET_CONTAINER", Value: target}
	dlv := corev1.Container{
		Name:            dlvName,
		Image:           dlvImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{agentBinary},
		Args:            []string{"launch-dlv", fmt.Sprintf("--listen=127.0.0.1:%d", dlvPort)},
		Env:             []corev1.EnvVar{targetEnv},
		Resources:       resources("50m", "64Mi", "1", "512Mi"),
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr(false),
			Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"SYS_PTRACE"}, Drop: []corev1.Capability{"ALL"}},
			Privileged:               ptr(false),
			// graydebug's "root-ptrace" identity (the bench pod names no uid): root with only SYS_PTRACE.
			RunAsUser:      ptr(int64(0)),
			RunAsGroup:     ptr(int64(0)),
			RunAsNonRoot:   ptr(false),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
				Command: []string{agentBinary, "probe-dlv", fmt.Sprintf("--addr=127.0.0.1:%d", dlvPort)}}},
			PeriodSeconds:    10,
			TimeoutSeconds:   5,
			FailureThreshold: 3,
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	agent := corev1.Container{
		Name:            agentName,
		Image:           agentImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{agentBinary},
		Args:            []string{fmt.Sprintf("--listen=:%d", agentPort), fmt.Sprintf("--dlv-addr=127.0.0.1:%d", dlvPort)},
		Env:             []corev1.EnvVar{targetEnv, fieldEnv("POD_NAME", "metadata.name"), fieldEnv("POD_NAMESPACE", "metadata.namespace")},
		Ports:           []corev1.ContainerPort{{Name: "gd-agent", ContainerPort: agentPort, Protocol: corev1.ProtocolTCP}},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(agentPort)}},
			PeriodSeconds:    10,
			TimeoutSeconds:   2,
			FailureThreshold: 3,
		},
		Resources: resources("10m", "16Mi", "100m", "64Mi"),
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			Privileged:               ptr(false),
			ReadOnlyRootFilesystem:   ptr(true),
			RunAsNonRoot:             ptr(true),
			RunAsUser:                ptr(int64(65532)),
			RunAsGroup:               ptr(int64(65532)),
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	return dlv, agent
}

func hasContainer(spec *corev1.PodSpec, name string) bool {
	for _, list := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for _, c := range list {
			if c.Name == name {
				return true
			}
		}
	}
	return false
}

func (in *injector) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Kind.Kind != "Pod" {
		return admission.Allowed("not a pod")
	}
	if req.Operation != "CREATE" {
		return admission.Allowed("not-create")
	}
	pod := &corev1.Pod{}
	if err := in.decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if pod.Labels[selectKey] != selectValue {
		return admission.Allowed("not-selected")
	}
	if pod.Annotations[selectKey] == "false" {
		return admission.Allowed("opted-out")
	}
	if pod.Labels[injectedKey] == "true" || pod.Annotations[statusKey] != "" ||
		hasContainer(&pod.Spec, dlvName) || hasContainer(&pod.Spec, agentName) {
		return admission.Allowed("already-injected")
	}
	if pod.Spec.HostNetwork {
		return admission.Allowed("host-network")
	}
	if len(pod.Spec.Containers) == 0 {
		return admission.Allowed("not-selected")
	}
	target := pod.Spec.Containers[0].Name
	if t, ok := pod.Annotations[targetKey]; ok {
		if !hasContainer(&corev1.PodSpec{Containers: pod.Spec.Containers}, t) {
			return admission.Allowed("invalid-annotation")
		}
		target = t
	}
	dlvImage, agentImage := image, image
	if v, ok := pod.Annotations[dlvImageKey]; ok && v != "" {
		dlvImage = v
	}
	if v, ok := pod.Annotations[agentImgKey]; ok && v != "" {
		agentImage = v
	}
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range list {
			for _, p := range c.Ports {
				if p.ContainerPort == dlvPort || p.ContainerPort == agentPort {
					return admission.Allowed("port-conflict")
				}
			}
		}
	}

	dlv, agent := sidecars(target, dlvImage, agentImage)
	pod.Spec.Containers = append(pod.Spec.Containers, dlv, agent)
	pod.Spec.ShareProcessNamespace = ptr(true)
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[injectedKey] = "true"
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	status, _ := json.Marshal(map[string]any{
		"containers": []string{dlvName, agentName}, "version": in.version, "target": target,
		"dlvPort": dlvPort, "agentPort": agentPort, "dlvUser": "root-ptrace",
	})
	pod.Annotations[statusKey] = string(status)
	if _, ok := pod.Annotations[defaultCtKey]; !ok {
		pod.Annotations[defaultCtKey] = target
	}
	_, s := pod.Annotations["prometheus.io/scrape"]
	_, p := pod.Annotations["prometheus.io/port"]
	_, q := pod.Annotations["prometheus.io/path"]
	if !s && !p && !q {
		pod.Annotations["prometheus.io/scrape"] = "true"
		pod.Annotations["prometheus.io/port"] = fmt.Sprint(agentPort)
		pod.Annotations["prometheus.io/path"] = "/metrics"
	}
	marshaled, err := json.Marshal(pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, marshaled)
}

// parseOnly answers every review with `patch` after decoding it.
func parseOnly(listen, certDir string, patch []byte) error {
	jsonPatch := admissionv1.PatchTypeJSONPatch
	mux := http.NewServeMux()
	mux.HandleFunc("/mutate/pods", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 6<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
			http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
			return
		}
		out, err := json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: review.TypeMeta,
			Response: &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true, Patch: patch, PatchType: &jsonPatch},
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
	srv := &http.Server{Addr: listen, Handler: mux, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	return srv.ListenAndServeTLS(certDir+"/tls.crt", certDir+"/tls.key")
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8443", "host:port")
	certDir := flag.String("cert-dir", "", "directory with tls.crt and tls.key")
	version := flag.String("version", "0.0.0", "version written into graydebug.io/status (graydebug-webhook's, for identical pods)")
	fixedPatch := flag.String("fixed-patch", "", "a JSON Patch file: serve it for every review, parsing only (the plain-Go peer)")
	flag.Parse()
	ctrl.SetLogger(logr.Discard())
	if *fixedPatch != "" {
		patch, err := os.ReadFile(*fixedPatch)
		if err == nil {
			err = parseOnly(*listen, *certDir, patch)
		}
		fmt.Fprintln(os.Stderr, "webhook-peer:", err)
		os.Exit(1)
	}

	host, portText, err := net.SplitHostPort(*listen)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil {
		fmt.Fprintln(os.Stderr, "webhook-peer: bad --listen:", *listen)
		os.Exit(2)
	}
	srv := webhook.NewServer(webhook.Options{
		Host: host, Port: port, CertDir: *certDir, CertName: "tls.crt", KeyName: "tls.key",
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }},
	})
	srv.Register("/mutate/pods", &admission.Webhook{Handler: &injector{decoder: admission.NewDecoder(runtime.NewScheme()), version: *version}})
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "webhook-peer:", err)
		os.Exit(1)
	}
}
