// The peer of graydebug-agent in bench/agent.bench.sh: the same sidecar job written the way a Go
// team would write it, with prometheus/client_golang. Every --sample-interval it reads the target's
// RSS from /proc and its heap from the Go expvar endpoint (gauges beside the default Go runtime and
// process collectors); it serves /metrics, /healthz and /probe/dlv (one JSON-RPC
// RPCServer.GetVersion call to dlv per request, as graydebug-agent's probe does).
//
//	agent-peer --listen 127.0.0.1:9103 --dlv-addr 127.0.0.1:2345 --target-pid PID --expvar-url URL
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var (
	targetRSS  = prometheus.NewGauge(prometheus.GaugeOpts{Name: "peer_target_rss_bytes", Help: "target resident memory"})
	targetHeap = prometheus.NewGauge(prometheus.GaugeOpts{Name: "peer_target_heap_bytes", Help: "target Go heap in use"})
	dlvUp      = prometheus.NewGauge(prometheus.GaugeOpts{Name: "peer_target_dlv_up", Help: "last dlv probe succeeded"})
)

func rssBytes(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb * 1024
		}
	}
	return 0
}

func probeDlv(addr string, timeout time.Duration) (float64, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(`{"method":"RPCServer.GetVersion","params":[{}],"id":1}` + "\n")); err != nil {
		return 0, err
	}
	var reply struct {
		Result json.RawMessage `json:"result"`
		Error  interface{}     `json:"error"`
	}
	if err := json.NewDecoder(c).Decode(&reply); err != nil {
		return 0, err
	}
	if reply.Error != nil {
		return 0, fmt.Errorf("dlv: %v", reply.Error)
	}
	return time.Since(start).Seconds(), nil
}

func main() {
	listen := flag.String("listen", ":9102", "address of /metrics, /healthz, /probe/dlv")
	dlvAddr := flag.String("dlv-addr", "127.0.0.1:2345", "dlv server")
	pid := flag.Int("target-pid", 0, "target process")
	expvarURL := flag.String("expvar-url", "", "target's /debug/vars")
	interval := flag.Duration("sample-interval", 5*time.Second, "sampling interval")
	flag.Parse()
	prometheus.MustRegister(targetRSS, targetHeap, dlvUp)
	hc := &http.Client{Timeout: 2 * time.Second}
	go func() {
		for range time.Tick(*interval) {
			targetRSS.Set(rssBytes(*pid))
			if *expvarURL == "" {
				continue
			}
			if resp, err := hc.Get(*expvarURL); err == nil {
				var v struct {
					Memstats struct {
						HeapInuse float64 `json:"HeapInuse"`
					} `json:"memstats"`
				}
				if json.NewDecoder(resp.Body).Decode(&v) == nil {
					targetHeap.Set(v.Memstats.HeapInuse)
				}
				resp.Body.Close()
			}
		}
	}()
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/probe/dlv", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		lat, err := probeDlv(*dlvAddr, 2*time.Second)
		if err != nil {
			dlvUp.Set(0)
			w.WriteHeader(http.StatusBadGateway)
			json.NewEncoder(w).Encode(map[string]interface{}{"ok": false, "error": err.Error()})
			return
		}
		dlvUp.Set(1)
		json.NewEncoder(w).Encode(map[string]interface{}{"ok": true, "latencySeconds": lat})
	})
	if err := http.ListenAndServe(*listen, mux); err != nil {
		fmt.Fprintln(os.Stderr, "agent-peer:", err)
		os.Exit(1)
	}
}
