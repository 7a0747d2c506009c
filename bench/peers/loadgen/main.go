// The load generator of bench/webhook.bench.sh and bench/apiserver.bench.sh (issue #10).
//
//	loadgen rate      --url U --body F --cacert C --rate R --duration D [--conns N]
//	    constant-rate (open-loop, wrk2-style) HTTPS POSTs over keep-alive connections. Request i is
//	    due at start + i/R; its latency is measured from when it was DUE, not from when a connection
//	    got free to send it, so a server that stalls is charged for the requests queued behind the
//	    stall (coordinated omission corrected, as wrk2 does).
//	loadgen handshake --url U --body F --cacert C --duration D [--conns N]
//	    new connections per second: every request opens a new TCP + TLS connection (full handshake,
//	    no session resumption), POSTs the body, reads the reply and closes.
//	loadgen pods      --kubeconfig K --namespace NS --pod F --count N [--workers W] [--expect-containers C]
//	    creates N pods (generateName) through the API server with client-go (no client-side rate
//	    limit), W at a time, timing every Create; then deletes them (not timed). With
//	    --expect-containers it first waits until a dry-run create returns that many containers, so a
//	    just-(un)registered webhook is in effect before the clock starts.
//
// Each mode prints one JSON line on stdout.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func die(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", a...)
	os.Exit(1)
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return float64(sorted[i].Microseconds()) / 1000
}

func tlsClient(cacert string, keepAlive bool, conns int) *http.Client {
	pem, err := os.ReadFile(cacert)
	if err != nil {
		die("%v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DisableKeepAlives:   !keepAlive,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		ForceAttemptHTTP2:   false,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 like the API server's webhook client and wrk
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func post(c *http.Client, url string, body []byte) error {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return err
}

func httpMode(mode string, args []string) {
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	url := fs.String("url", "", "https URL")
	bodyFile := fs.String("body", "", "request body file")
	cacert := fs.String("cacert", "", "CA certificate (PEM)")
	rate := fs.Float64("rate", 1000, "requests per second (rate mode)")
	duration := fs.Duration("duration", 5*time.Second, "measuring time")
	conns := fs.Int("conns", 16, "connections")
	fs.Parse(args)
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		die("%v", err)
	}
	client := tlsClient(*cacert, mode == "rate", *conns)
	if mode == "rate" {
		// Warm the connections so the first requests do not pay handshakes.
		var wg sync.WaitGroup
		for i := 0; i < *conns; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); _ = post(client, *url, body) }()
		}
		wg.Wait()
	}
	var errors, unsent atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	start := time.Now()
	end := start.Add(*duration)
	var wg sync.WaitGroup
	if mode == "rate" {
		interval := time.Duration(float64(time.Second) / *rate)
		total := int(duration.Seconds() * *rate)
		due := make(chan time.Time, total)
		go func() {
			for i := 0; i < total; i++ {
				t := start.Add(time.Duration(i) * interval)
				if d := time.Until(t); d > 0 {
					time.Sleep(d)
				}
				due <- t
			}
			close(due)
		}()
		// A server that cannot keep up would make the run last forever: give up after 3x the duration
		// and report what was never sent (the JSON's "unsent").
		giveUp := start.Add(3 * *duration)
		for w := 0; w < *conns; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				local := make([]time.Duration, 0, total / *conns + 1)
				for t := range due {
					if time.Now().After(giveUp) {
						unsent.Add(1)
						continue
					}
					if err := post(client, *url, body); err != nil {
						errors.Add(1)
					}
					local = append(local, time.Since(t))
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			}()
		}
	} else {
		for w := 0; w < *conns; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var local []time.Duration
				for time.Now().Before(end) {
					t := time.Now()
					if err := post(client, *url, body); err != nil {
						errors.Add(1)
					}
					local = append(local, time.Since(t))
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	out := map[string]any{
		"mode": mode, "requests": len(lat), "errors": errors.Load(), "seconds": elapsed,
		"rps": float64(len(lat)) / elapsed, "p50_ms": percentile(lat, 0.50), "p99_ms": percentile(lat, 0.99),
		"p999_ms": percentile(lat, 0.999), "max_ms": percentile(lat, 1),
	}
	if mode == "rate" {
		out["target_rps"] = *rate
		out["unsent"] = unsent.Load()
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

func podsMode(args []string) {
	fs := flag.NewFlagSet("pods", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig")
	ns := fs.String("namespace", "bench", "namespace (created when missing)")
	podFile := fs.String("pod", "", "pod JSON (metadata.name is replaced by generateName)")
	count := fs.Int("count", 2000, "pods to create")
	workers := fs.Int("workers", 4, "concurrent creates")
	expect := fs.Int("expect-containers", 0, "wait until a dry-run create yields this many containers")
	label := fs.String("label", "", "free-form label for the JSON line")
	fs.Parse(args)

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		die("%v", err)
	}
	cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limiter
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	raw, err := os.ReadFile(*podFile)
	if err != nil {
		die("%v", err)
	}
	var tmpl corev1.Pod
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		die("%s: %v", *podFile, err)
	}
	tmpl.Namespace, tmpl.Name, tmpl.GenerateName = *ns, "", "bench-"
	tmpl.OwnerReferences = nil
	if _, err := cs.CoreV1().Namespaces().Get(ctx, *ns, metav1.GetOptions{}); err != nil {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: *ns}}, metav1.CreateOptions{}); err != nil {
			die("namespace %s: %v", *ns, err)
		}
	}
	if *expect > 0 {
		deadline := time.Now().Add(60 * time.Second)
		for {
			p, err := cs.CoreV1().Pods(*ns).Create(ctx, tmpl.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err == nil && len(p.Spec.Containers) == *expect {
				break
			}
			if time.Now().After(deadline) {
				die("the webhook configuration did not take effect within 60 s (want %d containers, err %v)", *expect, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	lat := make([]time.Duration, *count)
	var next, errors, mutated atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *count {
					return
				}
				t := time.Now()
				p, err := cs.CoreV1().Pods(*ns).Create(ctx, tmpl.DeepCopy(), metav1.CreateOptions{})
				lat[i] = time.Since(t)
				if err != nil {
					errors.Add(1)
				} else if len(p.Spec.Containers) > len(tmpl.Spec.Containers) {
					mutated.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if err := cs.CoreV1().Pods(*ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}, metav1.ListOptions{}); err != nil {
		die("deleting the pods: %v", err)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"label": *label, "pods": *count, "workers": *workers, "errors": errors.Load(), "mutated": mutated.Load(),
		"seconds": elapsed, "pods_per_s": float64(*count) / elapsed,
		"p50_ms": percentile(lat, 0.50), "p99_ms": percentile(lat, 0.99),
	})
}

func main() {
	if len(os.Args) < 2 {
		die("usage: loadgen rate|handshake|pods [flags]")
	}
	switch os.Args[1] {
	case "rate", "handshake":
		httpMode(os.Args[1], os.Args[2:])
	case "pods":
		podsMode(os.Args[2:])
	default:
		die("unknown mode %q (want rate, handshake or pods)", os.Args[1])
	}
}
