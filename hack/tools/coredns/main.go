// CoreDNS with only the plugins a single-node cluster's Corefile uses. CoreDNS's own main imports
// core/plugin (zplugin.go: every plugin, and with them every cloud SDK); this one imports the few
// it needs and keeps upstream's execution order (core/dnsserver/zdirectives.go) for them.
package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// plugins are the directives imported above; keep the two lists together.
var plugins = []string{"cache", "errors", "health", "kubernetes", "loadbalance", "log", "ready"}

func main() {
	// Upstream's list filtered, not a hand-ordered copy: the order is what a plugin's position in
	// the chain means, and it moves with COREDNS_VERSION.
	order := slices.DeleteFunc(slices.Clone(dnsserver.Directives), func(d string) bool {
		return !slices.Contains(plugins, d)
	})
	if len(order) != len(plugins) {
		fmt.Fprintf(os.Stderr, "coredns: some of %v are not directives of this CoreDNS: %v\n", plugins, order)
		os.Exit(1)
	}
	if err := dnsserver.SetDirectives(order); err != nil {
		fmt.Fprintln(os.Stderr, "coredns:", err)
		os.Exit(1)
	}
	coremain.Run()
}
