package streams

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shoal-dev/shoal/api"
)

// The remote command subprotocols served, preferred first.
const (
	ProtocolV5 = "v5.channel.k8s.io"
	ProtocolV4 = "v4.channel.k8s.io"
)

// The channels of the remote command protocols.
const (
	ChanStdin  byte = 0
	ChanStdout byte = 1
	ChanStderr byte = 2
	ChanError  byte = 3
	ChanResize byte = 4
	// ChanClose (v5 only) carries one byte: the channel its sender closed.
	ChanClose byte = 255
)

// Limits of a remote command session.
const (
	// MaxMessageBytes bounds one message read from the client (stdin
	// chunks and resize events are small; kubectl sends at most 32 KiB).
	MaxMessageBytes = 1 << 20
	// WriteTimeout bounds one write to the client: a client that stops
	// reading for that long loses its session.
	WriteTimeout = 60 * time.Second
	// CloseTimeout is how long Finish waits for the client to answer the
	// closing handshake before it drops the connection.
	CloseTimeout = 10 * time.Second
	// MaxResizeQueue is how many terminal sizes wait for the command; older
	// ones are dropped when it is full (only the latest matters).
	MaxResizeQueue = 8
)

// Reasons and cause types of the Status that ends a command, as kubectl
// reads them to find the exit code.
const (
	ReasonNonZeroExitCode = "NonZeroExitCode"
	CauseExitCode         = "ExitCode"
)

// TermSize is a terminal's size in characters.
type TermSize struct {
	Width  uint16 `json:"Width"`
	Height uint16 `json:"Height"`
}

// CommandOptions are a remote command request's query parameters.
type CommandOptions struct {
	Container                  string
	Command                    []string
	Stdin, Stdout, Stderr, TTY bool
}

// ParseCommandOptions reads and checks the query of an exec (needCommand)
// or attach request; errors name the parameter.
func ParseCommandOptions(r *http.Request, needCommand bool) (CommandOptions, error) {
	q := r.URL.Query()
	var o CommandOptions
	o.Container = q.Get("container")
	o.Command = q["command"]
	for _, p := range []struct {
		name string
		dst  *bool
	}{{"stdin", &o.Stdin}, {"stdout", &o.Stdout}, {"stderr", &o.Stderr}, {"tty", &o.TTY}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("query parameter %s: %q is not a boolean", p.name, v)
		}
		*p.dst = b
	}
	switch {
	case needCommand && len(o.Command) == 0:
		return o, errors.New("query parameter command: at least one is required (the command and its arguments)")
	case !needCommand && len(o.Command) > 0:
		return o, errors.New("query parameter command: attach takes none")
	case !o.Stdin && !o.Stdout && !o.Stderr:
		return o, errors.New("query parameters stdin, stdout, stderr: at least one must be true")
	case o.TTY && o.Stderr:
		return o, errors.New("query parameters tty and stderr: a terminal has no separate stderr, they cannot both be true")
	}
	for i, c := range o.Command {
		if strings.IndexByte(c, 0) >= 0 {
			return o, fmt.Errorf("query parameter command[%d]: contains a NUL byte", i)
		}
	}
	return o, nil
}

// IsWebSocket reports whether r asks to be upgraded to a WebSocket.
func IsWebSocket(r *http.Request) bool { return websocket.IsWebSocketUpgrade(r) }

// Session is one remote command's connection after the upgrade, whichever
// the transport (WebSocket channels or SPDY streams).
type Session interface {
	// Protocol is the negotiated protocol (subprotocol or SPDY stream
	// protocol version).
	Protocol() string
	// Stdin is what the client sends on stdin; it returns EOF once the
	// client closed stdin or went away. Nil unless stdin was asked.
	Stdin() io.Reader
	// Stdout and Stderr write to the client's streams; nil unless asked.
	Stdout() io.Writer
	Stderr() io.Writer
	// Resize carries the client's terminal sizes (TTY sessions); it is
	// closed when the client goes away or stops sending them.
	Resize() <-chan TermSize
	// Gone is closed once the client has gone away.
	Gone() <-chan struct{}
	// Finish ends the command with st (its exit code, or why it could not
	// run) as the protocol carries it, and closes the connection.
	Finish(st api.Status) error
}

// wsSession is one remote command's WebSocket connection.
type wsSession struct {
	conn     *websocket.Conn
	protocol string
	opts     CommandOptions

	wmu    sync.Mutex
	closed bool // ChanStdout/ChanStderr writes refused after Finish

	stdinR   *io.PipeReader
	stdinW   *io.PipeWriter
	resize   chan TermSize
	readDone chan struct{}
}

var upgrader = websocket.Upgrader{
	Subprotocols:    []string{ProtocolV5, ProtocolV4},
	ReadBufferSize:  32 << 10,
	WriteBufferSize: 32 << 10,
	// The default CheckOrigin refuses a browser page of another origin
	// (kubectl sends no Origin).
}

// IsCommandUpgrade reports whether r asks for an upgrade a remote command
// may use: a WebSocket, or SPDY/3.1.
func IsCommandUpgrade(r *http.Request) bool {
	return IsWebSocket(r) || isSPDY(r)
}

// UpgradeCommand upgrades r to a remote command session: over a WebSocket
// (subprotocol ProtocolV5 or ProtocolV4), or over SPDY/3.1 (see
// SPDYCommandProtocols). It answers 400 itself when the client offers
// none of the protocols served; on error the response has been written.
func UpgradeCommand(w http.ResponseWriter, r *http.Request, opts CommandOptions) (Session, error) {
	if !IsWebSocket(r) {
		return upgradeSPDYCommand(w, r, opts)
	}
	offered := websocket.Subprotocols(r)
	if !slices.Contains(offered, ProtocolV5) && !slices.Contains(offered, ProtocolV4) {
		se := api.NewBadRequest("the WebSocket subprotocols offered (%s) include neither %s nor %s", strings.Join(offered, ", "), ProtocolV5, ProtocolV4)
		writeStatus(w, se.Status())
		return nil, se
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil, err // the upgrader answered
	}
	conn.SetReadLimit(MaxMessageBytes)
	s := &wsSession{
		conn:     conn,
		protocol: conn.Subprotocol(),
		opts:     opts,
		resize:   make(chan TermSize, MaxResizeQueue),
		readDone: make(chan struct{}),
	}
	s.stdinR, s.stdinW = io.Pipe()
	if !opts.Stdin {
		s.stdinW.Close()
	}
	go s.readLoop()
	return s, nil
}

// Protocol is the negotiated subprotocol.
func (s *wsSession) Protocol() string { return s.protocol }

// Stdin is what the client sends on the stdin channel; it returns EOF once
// the client closed stdin (v5) or went away. Nil unless stdin was asked.
func (s *wsSession) Stdin() io.Reader {
	if !s.opts.Stdin {
		return nil
	}
	return s.stdinR
}

// Stdout and Stderr write to the client's channels; nil unless asked.
func (s *wsSession) Stdout() io.Writer {
	if !s.opts.Stdout {
		return nil
	}
	return chanWriter{s, ChanStdout}
}

func (s *wsSession) Stderr() io.Writer {
	if !s.opts.Stderr {
		return nil
	}
	return chanWriter{s, ChanStderr}
}

// Resize carries the client's terminal sizes (TTY sessions); it is closed
// when the client goes away.
func (s *wsSession) Resize() <-chan TermSize { return s.resize }

// Gone is closed once the client has closed the connection or it failed.
func (s *wsSession) Gone() <-chan struct{} { return s.readDone }

// readLoop demultiplexes the client's messages: stdin data, resize events
// and (v5) close signals. Ping frames are answered by the library's
// default handler while it reads.
func (s *wsSession) readLoop() {
	defer close(s.readDone)
	var resizeW *io.PipeWriter
	if s.opts.TTY {
		var resizeR *io.PipeReader
		resizeR, resizeW = io.Pipe()
		go s.decodeResizes(resizeR) // closes s.resize when it ends
		defer resizeW.Close()
	} else {
		close(s.resize)
	}
	for {
		typ, msg, err := s.conn.ReadMessage()
		if err != nil {
			s.stdinW.CloseWithError(io.EOF)
			return
		}
		if typ != websocket.BinaryMessage || len(msg) == 0 {
			continue
		}
		ch, data := msg[0], msg[1:]
		switch {
		case ch == ChanStdin && s.opts.Stdin:
			if len(data) > 0 {
				// Blocks until the command reads it: the back-pressure
				// stops a fast client from filling memory.
				_, _ = s.stdinW.Write(data)
			}
		case ch == ChanResize && resizeW != nil:
			_, _ = resizeW.Write(data)
		case ch == ChanClose && s.protocol == ProtocolV5 && len(data) == 1 && data[0] == ChanStdin:
			s.stdinW.Close()
		}
	}
}

// decodeResizes reads the resize channel's JSON objects; it is the only
// sender on s.resize, and closes it at the end (EOF or bad JSON).
func (s *wsSession) decodeResizes(r *io.PipeReader) {
	r.CloseWithError(decodeResizes(r, s.resize))
}

// decodeResizes sends the terminal sizes read from r (JSON objects back
// to back) on out, keeping the newest when out is full, until r ends or
// holds something else; it closes out, and returns why it stopped.
func decodeResizes(r io.Reader, out chan TermSize) error {
	defer close(out)
	dec := json.NewDecoder(r)
	for {
		var sz TermSize
		if err := dec.Decode(&sz); err != nil {
			return err
		}
		select {
		case out <- sz:
		default: // full: drop the oldest, keep the newest
			select {
			case <-out:
			default:
			}
			select {
			case out <- sz:
			default:
			}
		}
	}
}

type chanWriter struct {
	s  *wsSession
	ch byte
}

func (c chanWriter) Write(p []byte) (int, error) {
	if err := c.s.write(c.ch, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// write sends one message on channel ch.
func (s *wsSession) write(ch byte, p []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return errors.New("remote command session finished")
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(WriteTimeout))
	w, err := s.conn.NextWriter(websocket.BinaryMessage)
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte{ch}); err != nil {
		w.Close()
		return err
	}
	if _, err := w.Write(p); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// ExitStatus is the Status that ends a command: Success for exit code 0,
// else Failure with reason NonZeroExitCode and the code as an ExitCode
// cause, as kubectl reads it.
func ExitStatus(code int) api.Status {
	st := api.Status{TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Status"}}
	if code == 0 {
		st.Status = api.StatusSuccess
		return st
	}
	st.Status = api.StatusFailure
	st.Reason = ReasonNonZeroExitCode
	st.Message = fmt.Sprintf("command terminated with non-zero exit code: exit status %d", code)
	st.Details = &api.StatusDetails{Causes: []api.StatusCause{{Type: CauseExitCode, Message: strconv.Itoa(code)}}}
	return st
}

// ErrorStatus is the Status that ends a command that could not run.
func ErrorStatus(err error) api.Status {
	var se *api.StatusError
	if errors.As(err, &se) {
		return se.Status()
	}
	return api.NewInternalError(err).Status()
}

// Finish sends st on the error channel, then closes the session: the
// closing handshake, waiting at most CloseTimeout for the client's answer.
// The client's stdout and stderr end there.
func (s *wsSession) Finish(st api.Status) error {
	body, err := json.Marshal(st)
	if err != nil {
		return err
	}
	werr := s.write(ChanError, body)
	s.wmu.Lock()
	s.closed = true
	s.wmu.Unlock()
	s.stdinR.Close() // unblocks readLoop if it waits for the command to read stdin
	_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(WriteTimeout))
	t := time.NewTimer(CloseTimeout)
	select {
	case <-s.readDone:
	case <-t.C:
	}
	t.Stop()
	return errors.Join(werr, s.conn.Close())
}

// writeStatus answers a plain HTTP request with a Status.
func writeStatus(w http.ResponseWriter, st api.Status) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	_ = json.NewEncoder(w).Encode(st)
}
