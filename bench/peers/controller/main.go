// The peer of graydebug-controller in bench/controller.bench.sh: a minimal controller-runtime
// controller watching the same objects (DebugSessions, and pods labelled
// graydebug.io/injected=true through the cache's label selector, as graydebug's informer does)
// and making a session Active the same way: finalizer, then one real attach through the pod's
// graydebug-agent (GET http://<podIP>:<gd-agent port>/probe/dlv, up to 3 tries), then one status
// write with phase Active and an Event. Active sessions are re-probed every 30 s. No circuit
// breaker, no TTL expiry, no leader election (graydebug runs without --leader-elect in the bench).
//
//	controller-peer --kubeconfig KC [--namespace NS] [--metrics-addr ADDR] [--workers 4]
//	controller-peer create-sessions --kubeconfig KC --namespace NS --pod POD --count N [--prefix P]
//
// create-sessions is the bench's load generator for both controllers: N DebugSessions created by
// 16 concurrent clients (kubectl sends a list's items one by one, which would be the bottleneck).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

const finalizer = "graydebug.io/session-cleanup"

var sessionGVK = schema.GroupVersionKind{Group: "graydebug.io", Version: "v1alpha1", Kind: "DebugSession"}

var activeGauge = prometheus.NewGauge(prometheus.GaugeOpts{
	Name: "bench_peer_sessions_active", Help: "DebugSessions this peer made Active and that still exist"})

type reconciler struct {
	client.Client
	recorder record.EventRecorder
	http     *http.Client
	mu       sync.Mutex
	active   map[types.NamespacedName]bool
}

func newSession() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(sessionGVK)
	return u
}

func (r *reconciler) setActive(key types.NamespacedName, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.active[key] = true
	} else {
		delete(r.active, key)
	}
	activeGauge.Set(float64(len(r.active)))
}

func agentPort(pod *corev1.Pod) int32 {
	for _, c := range pod.Spec.Containers {
		if c.Name != "graydebug-agent" {
			continue
		}
		for _, p := range c.Ports {
			if p.Name == "gd-agent" {
				return p.ContainerPort
			}
		}
	}
	return 9102
}

// probe asks the pod's agent to make one dlv GetVersion call; up to 3 tries with backoff.
func (r *reconciler) probe(ctx context.Context, pod *corev1.Pod) (float64, int, error) {
	url := fmt.Sprintf("http://%s:%d/probe/dlv", pod.Status.PodIP, agentPort(pod))
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		start := time.Now()
		var resp *http.Response
		resp, err = r.http.Get(url)
		// The agent caps concurrent probes and answers 503 "busy" beyond that: ask again shortly,
		// as graydebug-controller does (not an attach failure).
		for i := 0; i < 5 && err == nil && resp.StatusCode == http.StatusServiceUnavailable; i++ {
			resp.Body.Close()
			time.Sleep(time.Duration(100*(i+1)) * time.Millisecond)
			start = time.Now()
			resp, err = r.http.Get(url)
		}
		if err == nil {
			var body struct {
				OK    bool   `json:"ok"`
				Error string `json:"error"`
			}
			decErr := json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			switch {
			case decErr != nil:
				err = decErr
			case resp.StatusCode != http.StatusOK || !body.OK:
				err = fmt.Errorf("probe failed (HTTP %d): %s", resp.StatusCode, body.Error)
			default:
				return time.Since(start).Seconds(), attempt, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, attempt, ctx.Err()
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
	return 0, 3, err
}

func (r *reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	s := newSession()
	if err := r.Get(ctx, req.NamespacedName, s); err != nil {
		if apierrors.IsNotFound(err) {
			r.setActive(req.NamespacedName, false)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !s.GetDeletionTimestamp().IsZero() {
		r.setActive(req.NamespacedName, false)
		if controllerutil.RemoveFinalizer(s, finalizer) {
			return reconcile.Result{}, client.IgnoreNotFound(r.Update(ctx, s))
		}
		return reconcile.Result{}, nil
	}
	if controllerutil.AddFinalizer(s, finalizer) {
		if err := r.Update(ctx, s); err != nil {
			return reconcile.Result{}, client.IgnoreNotFound(err)
		}
	}
	phase, _, _ := unstructured.NestedString(s.Object, "status", "phase")
	switch phase {
	case "Expired", "Failed", "Rejected", "Terminated":
		r.setActive(req.NamespacedName, false)
		return reconcile.Result{}, nil
	}
	podName, _, _ := unstructured.NestedString(s.Object, "spec", "target", "pod")
	pod := &corev1.Pod{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: req.Namespace, Name: podName}, pod); err != nil ||
		pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" {
		if phase == "Active" {
			r.setActive(req.NamespacedName, false)
			return reconcile.Result{}, r.writeStatus(ctx, s, "Terminated", nil, 0, 0, "target pod is gone")
		}
		return reconcile.Result{RequeueAfter: time.Second}, nil
	}
	latency, attempts, err := r.probe(ctx, pod)
	if err != nil {
		r.setActive(req.NamespacedName, false)
		return reconcile.Result{}, r.writeStatus(ctx, s, "Failed", pod, 0, attempts, err.Error())
	}
	if phase != "Active" {
		if err := r.writeStatus(ctx, s, "Active", pod, latency, attempts, ""); err != nil {
			return reconcile.Result{}, err
		}
		r.recorder.Event(s, corev1.EventTypeNormal, "Active", "attached to dlv in pod "+pod.Name)
	}
	r.setActive(req.NamespacedName, true)
	return reconcile.Result{RequeueAfter: 30 * time.Second}, nil
}

func (r *reconciler) writeStatus(ctx context.Context, s *unstructured.Unstructured, phase string, pod *corev1.Pod,
	latency float64, attempts int, lastError string) error {
	now := time.Now().UTC()
	ttl := 15 * time.Minute
	if v, ok, _ := unstructured.NestedString(s.Object, "spec", "ttl"); ok {
		if d, err := time.ParseDuration(v); err == nil {
			ttl = d
		}
	}
	st := map[string]interface{}{
		"phase":              phase,
		"observedGeneration": s.GetGeneration(),
		"attach":             map[string]interface{}{"latencySeconds": latency, "attempts": int64(attempts), "lastError": lastError},
		"startedAt":          now.Format(time.RFC3339),
		"expiresAt":          now.Add(ttl).Format(time.RFC3339),
	}
	if pod != nil {
		st["pod"], st["podIP"], st["release"] = pod.Name, pod.Status.PodIP, pod.Labels["version"]
		st["connect"] = fmt.Sprintf("kubectl port-forward -n %s pod/%s 2345:2345 && dlv connect 127.0.0.1:2345",
			pod.Namespace, pod.Name)
	}
	s.Object["status"] = st
	return r.Status().Update(ctx, s)
}

func runController(args []string) error {
	fs := flag.NewFlagSet("controller-peer", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file")
	namespace := fs.String("namespace", "", "watch this namespace only (default: all)")
	metricsAddr := fs.String("metrics-addr", "127.0.0.1:0", "address of /metrics")
	workers := fs.Int("workers", 4, "MaxConcurrentReconciles")
	qps := fs.Float64("kube-api-qps", 50, "client-side QPS (graydebug-controller's default is 50)")
	burst := fs.Int("kube-api-burst", 100, "client-side burst (graydebug-controller's default is 100)")
	fs.Parse(args)
	ctrl.SetLogger(zap.New(zap.Level(zapcore.ErrorLevel)))
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = float32(*qps), *burst
	cacheOpts := cache.Options{ByObject: map[client.Object]cache.ByObject{
		// The same selector graydebug-controller's pod informer uses.
		&corev1.Pod{}: {Label: labels.SelectorFromSet(labels.Set{"graydebug.io/injected": "true"})},
	}}
	if *namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{*namespace: {}}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Cache:                  cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return err
	}
	ctrlmetrics.Registry.MustRegister(activeGauge)
	const targetIndex = "spec.target.pod"
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), newSession(), targetIndex,
		func(o client.Object) []string {
			p, _, _ := unstructured.NestedString(o.(*unstructured.Unstructured).Object, "spec", "target", "pod")
			return []string{p}
		}); err != nil {
		return err
	}
	r := &reconciler{Client: mgr.GetClient(), recorder: mgr.GetEventRecorderFor("controller-peer"),
		http: &http.Client{Timeout: 2 * time.Second}, active: map[types.NamespacedName]bool{}}
	// A pod event wakes the sessions that target it (index on spec.target.pod).
	podToSessions := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(sessionGVK.GroupVersion().WithKind("DebugSessionList"))
		if err := mgr.GetClient().List(ctx, list, client.InNamespace(o.GetNamespace()),
			client.MatchingFields{targetIndex: o.GetName()}); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, s := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: s.GetNamespace(), Name: s.GetName()}})
		}
		return reqs
	})
	if err := ctrl.NewControllerManagedBy(mgr).Named("debugsession").For(newSession()).
		Watches(&corev1.Pod{}, podToSessions).
		WithOptions(controller.Options{MaxConcurrentReconciles: *workers}).
		Complete(r); err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}

func createSessions(args []string) error {
	fs := flag.NewFlagSet("create-sessions", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file")
	namespace := fs.String("namespace", "default", "namespace")
	pod := fs.String("pod", "", "target pod")
	count := fs.Int("count", 1000, "sessions")
	prefix := fs.String("prefix", "s", "name prefix")
	fs.Parse(args)
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = -1, 0
	dc := dynamic.NewForConfigOrDie(cfg).Resource(sessionGVK.GroupVersion().WithResource("debugsessions")).Namespace(*namespace)
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < *count; i = int(next.Add(1) - 1) {
				s := newSession()
				s.SetName(fmt.Sprintf("%s-%d", *prefix, i))
				s.Object["spec"] = map[string]interface{}{"target": map[string]interface{}{"pod": *pod}, "ttl": "4h"}
				if _, err := dc.Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
					fmt.Fprintln(os.Stderr, "create:", err)
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		return fmt.Errorf("%d of %d creates failed", failed.Load(), *count)
	}
	return nil
}

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "create-sessions" {
		err = createSessions(os.Args[2:])
	} else {
		err = runController(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "controller-peer:", err)
		os.Exit(1)
	}
}
