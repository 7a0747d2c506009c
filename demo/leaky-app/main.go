// leaky-app: the debuggee of graydebug's tests and demo. A small order service that reproduces the
// three Go memory leaks of the seed document (chapters 1-3), each switchable over HTTP:
//
//   - list: *list.Element values kept alive by a global index map after the list is "trimmed"
//     (Remove is never called, so the elements and their payloads stay reachable);
//   - map: a session map that only gains keys (deleting would not shrink its buckets anyway);
//   - slice: a cache slice that only grows (reslicing keeps the backing array).
//
// GET /leak?kind=list|map|slice&rate=<KiB per second> switches a leak on, GET /leak/off stops all
// of them, GET /stats shows what is retained, /debug/vars is expvar (the agent reads memstats there),
// GET /order does a little work so tests can see the app keeps serving while dlv is attached.
// Build with -gcflags=all=-N -l so dlv sees every variable.
package main

import (
	"container/list"
	"encoding/json"
	"expvar"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

type payload struct {
	id   int
	data []byte
}

type leaks struct {
	mu      sync.Mutex
	kinds   map[string]int // kind -> KiB per second
	orders  *list.List
	index   map[int]*list.Element // the list leak: the index outlives the list's trimming
	session map[string][]byte     // the map leak
	cache   [][]byte              // the slice leak
	next    int
	served  int64
}

var state = &leaks{kinds: map[string]int{}, orders: list.New(), index: map[int]*list.Element{}, session: map[string][]byte{}}

func (l *leaks) tick() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for kind, rate := range l.kinds {
		bytes := rate * 1024 / 10 // ticks are 100 ms
		for done := 0; done < bytes; done += 1024 {
			l.next++
			buf := make([]byte, 1024)
			for i := range buf {
				buf[i] = byte(l.next + i)
			}
			switch kind {
			case "list":
				e := l.orders.PushBack(&payload{id: l.next, data: buf})
				l.index[l.next] = e
				if l.orders.Len() > 100 {
					// "Trim" by re-initialising the list: the index still holds every element.
					l.orders = list.New()
				}
			case "map":
				l.session["session-"+strconv.Itoa(l.next)] = buf
			case "slice":
				l.cache = append(l.cache, buf)
			}
		}
	}
}

func (l *leaks) retained() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return map[string]int{"list": len(l.index), "map": len(l.session), "slice": len(l.cache)}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "HTTP listen address")
	flag.Parse()
	expvar.Publish("leaks", expvar.Func(func() any { return state.retained() }))

	go func() {
		for range time.Tick(100 * time.Millisecond) {
			state.tick()
		}
	}()
	http.HandleFunc("/leak", func(w http.ResponseWriter, r *http.Request) {
		kind := r.URL.Query().Get("kind")
		if kind != "list" && kind != "map" && kind != "slice" {
			http.Error(w, "kind must be list, map or slice", http.StatusBadRequest)
			return
		}
		rate, err := strconv.Atoi(r.URL.Query().Get("rate"))
		if err != nil || rate <= 0 || rate > 1<<20 {
			rate = 256
		}
		state.mu.Lock()
		state.kinds[kind] = rate
		state.mu.Unlock()
		fmt.Fprintf(w, "leak %s on at %d KiB/s\n", kind, rate)
	})
	http.HandleFunc("/leak/off", func(w http.ResponseWriter, r *http.Request) {
		state.mu.Lock()
		state.kinds = map[string]int{}
		state.mu.Unlock()
		fmt.Fprintln(w, "leaks off (retained memory stays: that is the leak)")
	})
	http.HandleFunc("/leak/reset", func(w http.ResponseWriter, r *http.Request) {
		state.mu.Lock()
		state.kinds = map[string]int{}
		state.orders, state.index, state.session, state.cache = list.New(), map[int]*list.Element{}, map[string][]byte{}, nil
		state.mu.Unlock()
		fmt.Fprintln(w, "leaks off and retained memory released")
	})
	http.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(state.retained())
	})
	http.HandleFunc("/order", func(w http.ResponseWriter, r *http.Request) {
		state.mu.Lock()
		state.served++
		n := state.served
		state.mu.Unlock()
		fmt.Fprintf(w, "order %d ok\n", n)
	})
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("leaky-app: %v", err)
	}
	fmt.Fprintf(os.Stderr, "leaky-app: serving on %s (pid %d)\n", ln.Addr(), os.Getpid())
	log.Fatal(http.Serve(ln, nil))
}
