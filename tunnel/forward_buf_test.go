package tunnel

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// sizedReader serves data in reads of at most chunk bytes and records the buffer
// sizes it was given.
type sizedReader struct {
	data  []byte
	chunk int
	seen  []int
}

func (r *sizedReader) Read(p []byte) (int, error) {
	r.seen = append(r.seen, len(p))
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestCopyAdaptive(t *testing.T) {
	data := make([]byte, 3<<20+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	// Chatty: reads never fill the small buffer, so it is never swapped.
	chatty := &sizedReader{data: data[:100000], chunk: 1000}
	var out bytes.Buffer
	if err := copyAdaptive(&out, chatty); err != nil || !bytes.Equal(out.Bytes(), data[:100000]) {
		t.Fatalf("chatty copy: err %v, %d bytes equal=%v", err, out.Len(), bytes.Equal(out.Bytes(), data[:100000]))
	}
	for _, n := range chatty.seen {
		if n != smallBufSize {
			t.Fatalf("chatty copy read into a %d-byte buffer; want only %d", n, smallBufSize)
		}
	}
	// Bulk: the first full read moves the copy to the big buffer.
	bulk := &sizedReader{data: data, chunk: 1 << 30}
	out.Reset()
	if err := copyAdaptive(&out, bulk); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("bulk copy: err %v, %d of %d bytes", err, out.Len(), len(data))
	}
	if bulk.seen[0] != smallBufSize || len(bulk.seen) < 2 || bulk.seen[1] != bigBufSize {
		t.Fatalf("bulk copy buffer sizes %v; want %d then %d", bulk.seen[:min(3, len(bulk.seen))], smallBufSize, bigBufSize)
	}
	// Errors: a failed write and a short one end the copy with an error.
	if err := copyAdaptive(failWriter{}, &sizedReader{data: data, chunk: 10}); !errors.Is(err, errFailWrite) {
		t.Fatalf("write error: got %v", err)
	}
	if err := copyAdaptive(shortWriter{}, &sizedReader{data: data, chunk: 10}); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("short write: got %v", err)
	}
}

var errFailWrite = errors.New("write failed")

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, errFailWrite }

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) - 1, nil }
