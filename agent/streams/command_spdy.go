package streams

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/moby/spdystream"

	"github.com/shoal-dev/shoal/api"
)

// The remote command protocols served over SPDY/3.1, preferred first. The
// client opens one stream per standard stream, named by its streamType
// header: "error" always, "stdin", "stdout", "stderr" as the query asks
// ("stderr" never with a terminal), and from v3 "resize" with a terminal
// (JSON TermSize objects back to back). v4 ends the command with a Status
// in JSON on the error stream (exit code included); v2 and v3 write only
// the message of a failure there, as text, and nothing on success.
var SPDYCommandProtocols = []string{"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io"}

// The streamType header values of a SPDY remote command.
const (
	spdyStreamError  = "error"
	spdyStreamStdin  = "stdin"
	spdyStreamStdout = "stdout"
	spdyStreamStderr = "stderr"
	spdyStreamResize = "resize"
)

// StreamWaitTimeout bounds how long a SPDY remote command waits for the
// client to open the streams its query announced.
var StreamWaitTimeout = 30 * time.Second

// spdySession is a remote command on a connection upgraded to SPDY/3.1.
type spdySession struct {
	raw      net.Conn
	conn     *spdystream.Connection
	protocol string
	opts     CommandOptions
	streams  map[string]*spdystream.Stream
	resize   chan TermSize
	gone     chan struct{}
}

// spdyExpected is the stream types a command with opts opens.
func spdyExpected(opts CommandOptions, protocol string) map[string]bool {
	want := map[string]bool{spdyStreamError: true}
	want[spdyStreamStdin] = opts.Stdin
	want[spdyStreamStdout] = opts.Stdout
	want[spdyStreamStderr] = opts.Stderr && !opts.TTY
	want[spdyStreamResize] = opts.TTY && protocol != "v2.channel.k8s.io"
	for k, v := range want {
		if !v {
			delete(want, k)
		}
	}
	return want
}

// upgradeSPDYCommand upgrades r to SPDY/3.1 with the best protocol both
// sides speak and waits (StreamWaitTimeout) for the client's streams.
func upgradeSPDYCommand(w http.ResponseWriter, r *http.Request, opts CommandOptions) (Session, error) {
	protocol := negotiateSPDY(r, SPDYCommandProtocols)
	if protocol == "" {
		se := api.NewBadRequest("a remote command needs a WebSocket (subprotocol %s or %s) or %s with %s one of %s; offered: %q",
			ProtocolV5, ProtocolV4, spdyUpgrade, headerStreamProtocol, strings.Join(SPDYCommandProtocols, ", "), spdyOffered(r))
		writeStatus(w, se.Status())
		return nil, se
	}
	raw, err := upgradeSPDY(w, r, protocol)
	if err != nil {
		return nil, err
	}
	sc, err := spdystream.NewConnection(raw, true)
	if err != nil {
		raw.Close()
		return nil, err
	}
	sc.SetCloseTimeout(CloseTimeout)
	s := &spdySession{raw: raw, conn: sc, protocol: protocol, opts: opts,
		streams: map[string]*spdystream.Stream{}, resize: make(chan TermSize, MaxResizeQueue)}
	want := spdyExpected(opts, protocol)
	var mu sync.Mutex
	replied := 0
	all := make(chan struct{})
	go sc.Serve(func(st *spdystream.Stream) {
		typ := st.Headers().Get("streamType")
		mu.Lock()
		ok := want[typ] && s.streams[typ] == nil
		if ok {
			s.streams[typ] = st
		}
		mu.Unlock()
		if !ok {
			_ = st.Refuse() // a stream the query did not announce, or twice
			return
		}
		_ = st.SendReply(http.Header{}, false)
		mu.Lock()
		replied++
		if replied == len(want) {
			close(all)
		}
		mu.Unlock()
	})
	t := time.NewTimer(StreamWaitTimeout)
	defer t.Stop()
	select {
	case <-all:
	case <-t.C:
		s.drop()
		return nil, fmt.Errorf("the client opened %d of the %d streams its query announced within %v", replied, len(want), StreamWaitTimeout)
	case <-sc.CloseChan():
		s.drop()
		return nil, errors.New("the client went away before opening its streams")
	}
	if rs := s.streams[spdyStreamResize]; rs != nil {
		go func() { _ = decodeResizes(rs, s.resize) }()
	} else {
		close(s.resize)
	}
	s.gone = make(chan struct{})
	go func() {
		<-sc.CloseChan()
		close(s.gone)
	}()
	return s, nil
}

// drop closes the connection at once.
func (s *spdySession) drop() {
	_ = s.conn.Close()
	_ = s.raw.Close()
}

func (s *spdySession) Protocol() string { return s.protocol }

func (s *spdySession) Stdin() io.Reader {
	if st := s.streams[spdyStreamStdin]; st != nil {
		return st // EOF when the client half-closes it
	}
	return nil
}

func (s *spdySession) Stdout() io.Writer { return s.writer(spdyStreamStdout) }
func (s *spdySession) Stderr() io.Writer { return s.writer(spdyStreamStderr) }

func (s *spdySession) writer(typ string) io.Writer {
	if st := s.streams[typ]; st != nil {
		return &deadlineWriter{c: s.raw, w: st}
	}
	return nil
}

func (s *spdySession) Resize() <-chan TermSize { return s.resize }

func (s *spdySession) Gone() <-chan struct{} { return s.gone }

// Finish ends the output streams, writes st on the error stream as the
// protocol version wants it, resets what is left and closes the
// connection, waiting at most CloseTimeout for the client to close its
// side.
func (s *spdySession) Finish(st api.Status) error {
	for _, typ := range []string{spdyStreamStdout, spdyStreamStderr} {
		if o := s.streams[typ]; o != nil {
			_ = o.Close()
		}
	}
	var werr error
	es := s.streams[spdyStreamError]
	_ = s.raw.SetWriteDeadline(time.Now().Add(WriteTimeout))
	switch {
	case s.protocol == "v4.channel.k8s.io":
		body, err := json.Marshal(st)
		if err != nil {
			return err
		}
		_, werr = es.Write(body)
	case st.Status != api.StatusSuccess:
		_, werr = es.Write([]byte(st.Message))
	}
	_ = es.Close()
	for _, o := range s.streams {
		_ = o.Reset()
	}
	_ = s.conn.Close()
	t := time.NewTimer(CloseTimeout)
	select {
	case <-s.conn.CloseChan():
	case <-t.C:
	}
	t.Stop()
	return errors.Join(werr, s.raw.Close())
}

// deadlineWriter bounds each write by WriteTimeout on the connection
// below: a client that stops reading loses its session.
type deadlineWriter struct {
	c net.Conn
	w io.Writer
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	_ = d.c.SetWriteDeadline(time.Now().Add(WriteTimeout))
	return d.w.Write(p)
}
