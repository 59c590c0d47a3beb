package testenv

// TestProgram is the Go source of the one multi-purpose program every
// dataplane test runs (see TestImage). Its arguments are a chain of commands
// run in order; a command that blocks (serve, sleep without a duration)
// ends the chain:
//
//	print-env            print "ARGS <args joined by space>", then every
//	                     environment variable as "ENV K=V", then "CWD <dir>"
//	echo WORD            print WORD on stdout
//	echo-err WORD        print WORD on stderr
//	cat FILE             copy FILE to stdout (exit 1 if it cannot be read)
//	write FILE TEXT      write TEXT to FILE
//	exit N               exit with code N
//	sleep [DURATION]     sleep DURATION (Go syntax, e.g. 2s), or forever
//	crash-after DURATION sleep DURATION, print "crashing", exit 1
//	alloc MB             allocate and touch MB MiB, print "allocated MB", continue
//	ignore-term          ignore SIGTERM from now on (only SIGKILL stops it)
//	term-exit N          exit with code N on SIGTERM (default: the Go runtime's
//	                     behaviour, exit 2 as PID 1)
//	serve [--port N]     HTTP on :N (default 8080, or $PORT): /healthz → "ok",
//	                     /env → environment, /hostname, /file?path=P,
//	                     /exit?code=N exits; prints "listening on :N"
//	tick DURATION        print "tick N" every DURATION, forever
//	get URL              HTTP GET URL (5 s timeout, names resolved through
//	                     /etc/resolv.conf), print the body; exit 1 on failure
//
// Without arguments it runs "sleep". Output lines are flushed at once.
const TestProgram = `package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var ballast [][]byte

func main() {
	args := os.Args[1:]
	if len(args) == 0 {
		args = []string{"sleep"}
	}
	for len(args) > 0 {
		cmd := args[0]
		args = args[1:]
		need := func(n int) []string {
			if len(args) < n {
				fmt.Fprintf(os.Stderr, "%s needs %d argument(s)\n", cmd, n)
				os.Exit(64)
			}
			got := args[:n]
			args = args[n:]
			return got
		}
		switch cmd {
		case "print-env":
			fmt.Printf("ARGS %s\n", strings.Join(os.Args[1:], " "))
			for _, kv := range os.Environ() {
				fmt.Printf("ENV %s\n", kv)
			}
			wd, _ := os.Getwd()
			fmt.Printf("CWD %s\n", wd)
		case "echo":
			fmt.Println(need(1)[0])
		case "echo-err":
			fmt.Fprintln(os.Stderr, need(1)[0])
		case "cat":
			data, err := os.ReadFile(need(1)[0])
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Stdout.Write(data)
		case "write":
			a := need(2)
			if err := os.WriteFile(a[0], []byte(a[1]), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		case "exit":
			n, _ := strconv.Atoi(need(1)[0])
			os.Exit(n)
		case "sleep":
			if len(args) > 0 {
				if d, err := time.ParseDuration(args[0]); err == nil {
					args = args[1:]
					time.Sleep(d)
					continue
				}
			}
			forever()
		case "crash-after":
			d, _ := time.ParseDuration(need(1)[0])
			time.Sleep(d)
			fmt.Println("crashing")
			os.Exit(1)
		case "alloc":
			mb, _ := strconv.Atoi(need(1)[0])
			for i := 0; i < mb; i++ {
				b := make([]byte, 1<<20)
				for j := 0; j < len(b); j += 4096 {
					b[j] = 1
				}
				ballast = append(ballast, b)
			}
			fmt.Printf("allocated %d\n", mb)
		case "ignore-term":
			signal.Ignore(syscall.SIGTERM)
		case "term-exit":
			n, _ := strconv.Atoi(need(1)[0])
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGTERM)
			go func() {
				<-ch
				fmt.Println("terminating")
				os.Exit(n)
			}()
		case "tick":
			d, _ := time.ParseDuration(need(1)[0])
			for i := 0; ; i++ {
				fmt.Printf("tick %d\n", i)
				time.Sleep(d)
			}
		case "get":
			c := &http.Client{Timeout: 5 * time.Second}
			resp, err := c.Get(need(1)[0])
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			os.Stdout.Write(body)
			if resp.StatusCode != http.StatusOK {
				fmt.Fprintln(os.Stderr, resp.Status)
				os.Exit(1)
			}
		case "serve":
			port := os.Getenv("PORT")
			if port == "" {
				port = "8080"
			}
			if len(args) >= 2 && args[0] == "--port" {
				port = args[1]
				args = args[2:]
			}
			serve(port)
		default:
			fmt.Fprintf(os.Stderr, "unknown command %q\n", cmd)
			os.Exit(64)
		}
	}
}

// forever blocks without tripping the runtime's deadlock detector (a bare
// select{} with no other goroutine exits with code 2).
func forever() {
	for {
		time.Sleep(time.Hour)
	}
}

func serve(port string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		for _, kv := range os.Environ() {
			fmt.Fprintln(w, kv)
		}
	})
	mux.HandleFunc("/hostname", func(w http.ResponseWriter, r *http.Request) {
		h, _ := os.Hostname()
		fmt.Fprintln(w, h)
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		data, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(data)
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("code"))
		fmt.Fprintln(w, "bye")
		go os.Exit(n)
	})
	fmt.Printf("listening on :%s\n", port)
	if err := http.ListenAndServe(":"+port, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`
