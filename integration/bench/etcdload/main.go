// Command etcdload writes 1 KiB values to an etcd cluster through etcd's own
// v3 client and prints throughput and latency, in the same format as Shoal's
// write benchmark, so the two can be compared in one run. It lives in its own
// module so that Shoal's module does not depend on etcd.
//
// With -cacert, -cert and -key it talks TLS, presenting the client
// certificate (a cluster run with --client-cert-auth, as Kubernetes runs
// etcd), to https endpoints.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated client URLs")
	writers := flag.Int("writers", 1, "concurrent writers")
	duration := flag.Duration("duration", 5*time.Second, "how long to write")
	maxOps := flag.Int("max-ops", 200000, "stop after this many writes")
	size := flag.Int("size", 1024, "value size in bytes")
	leaderOnly := flag.Bool("leader-only", false, "send every write to the leader's endpoint only (found with the Status call) instead of spreading them over all endpoints")
	cacert := flag.String("cacert", "", "TLS: the CA certificate (PEM) the servers' certificates are verified against; with -cert and -key")
	cert := flag.String("cert", "", "TLS: the client certificate (PEM)")
	key := flag.String("key", "", "TLS: the client certificate's private key (PEM)")
	flag.Parse()

	eps := strings.Split(*endpoints, ",")
	cfg := clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second}
	system := "etcd"
	if *cacert != "" || *cert != "" || *key != "" {
		tc, err := tlsConfig(*cacert, *cert, *key)
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcdload: TLS:", err)
			os.Exit(1)
		}
		cfg.TLS = tc
		for i, ep := range eps {
			eps[i] = "https://" + strings.TrimPrefix(strings.TrimPrefix(ep, "https://"), "http://")
		}
		system = "etcd-tls"
	}
	if *leaderOnly {
		l, err := leaderEndpoint(cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcdload: -leader-only:", err)
			os.Exit(1)
		}
		eps = []string{l}
	}

	cfg.Endpoints = eps
	cli, err := clientv3.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdload:", err)
		os.Exit(1)
	}
	defer cli.Close()
	value := strings.Repeat("x", *size)
	// Warm up the connection and the leader.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if _, err := cli.Put(ctx, "/warmup", value); err != nil {
		fmt.Fprintln(os.Stderr, "etcdload: warm-up put:", err)
		os.Exit(1)
	}
	cancel()

	var next atomic.Int64
	var failed atomic.Int64
	lat := make([][]time.Duration, *writers)
	deadline := time.Now().Add(*duration)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := next.Add(1)
				if i > int64(*maxOps) {
					return
				}
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := cli.Put(ctx, fmt.Sprintf("/bench/w%d/k%d", w, i), value)
				cancel()
				if err != nil {
					failed.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	fmt.Printf("RESULT system=%s writers=%d ops=%d failed=%d seconds=%.3f ops_per_s=%.1f p50_ms=%.3f p99_ms=%.3f\n",
		system, *writers, len(all), failed.Load(), elapsed.Seconds(), float64(len(all))/elapsed.Seconds(), pct(0.50), pct(0.99))
}

// tlsConfig is the client's TLS configuration: the certificate in
// certFile and keyFile, servers verified against the CA in caFile.
func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" || certFile == "" || keyFile == "" {
		return nil, errors.New("-cacert, -cert and -key go together")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}, nil
}

// leaderEndpoint returns the endpoint of cfg's whose member leads, waiting
// up to 10 s for a leader.
func leaderEndpoint(cfg clientv3.Config) (string, error) {
	eps := cfg.Endpoints
	cli, err := clientv3.New(cfg)
	if err != nil {
		return "", err
	}
	defer cli.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, ep := range eps {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := cli.Status(ctx, ep)
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return ep, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("no member of %v leads after 10 s", eps)
}
