// The peer of bench/informer_bench.cpp: a client-go shared informer on the same pods, measured
// the same way (sync time, RSS per cached object, watch events/s). Prints one JSON line.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

func rssKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), "VmRSS:") {
			var v int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(s.Text(), "VmRSS:")), "%d", &v)
			return v
		}
	}
	return 0
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig")
	ns := flag.String("namespace", "bench", "namespace")
	updates := flag.Int("updates", 2000, "updates")
	count := flag.Int("count", 10000, "pods")
	flag.Parse()
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		panic(err)
	}
	cfg.QPS, cfg.Burst = -1, 0
	client := kubernetes.NewForConfigOrDie(cfg)
	before := rssKiB()
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(*ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = "graydebug.io/injected=true" }))
	inf := factory.Core().V1().Pods().Informer()
	var modified atomic.Int64
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: func(_, _ interface{}) { modified.Add(1) }})
	stop := make(chan struct{})
	t0 := time.Now()
	factory.Start(stop)
	// Not cache.WaitForCacheSync: it polls every 100 ms, which rounds the sync time up to 0.1 s steps.
	for !inf.HasSynced() {
		time.Sleep(time.Millisecond)
	}
	syncS := time.Since(t0).Seconds()
	after := rssKiB()
	objects := len(inf.GetStore().ListKeys())
	t1 := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < *updates; i = int(next.Add(1) - 1) {
				patch := fmt.Sprintf(`{"metadata":{"annotations":{"bench":"go-%d"}}}`, i)
				client.CoreV1().Pods(*ns).Patch(context.Background(), fmt.Sprintf("pod-%d", i%*count),
					types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			}
		}()
	}
	wg.Wait()
	for modified.Load() < int64(*updates) {
		time.Sleep(2 * time.Millisecond)
	}
	updS := time.Since(t1).Seconds()
	close(stop)
	out, _ := json.Marshal(map[string]interface{}{
		"impl": "client-go", "objects": objects, "sync_seconds": syncS, "rss_kib_before": before,
		"rss_kib_after_sync": after, "kib_per_object": float64(after-before) / float64(objects),
		"updates": *updates, "update_events_per_second": float64(*updates) / updS,
	})
	fmt.Println(string(out))
}
