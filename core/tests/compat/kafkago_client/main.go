// segmentio/kafka-go (Debian's golang-github-segmentio-kafka-go-dev) against a broker: read
// the topic's partitions, produce N keyed messages with a Writer (RequiredAcks=-1),
// read them back with a Reader on partition 0 (no group) from the first offset.
//
// usage: kafkago_client BOOTSTRAP TOPIC N [all|consume [TIMEOUT_SECONDS]]
// `consume` skips the Writer (the records were produced by another client).
// Builds offline from Debian's packaged sources:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o kafkago_client .
//
// COMPAT_COMPRESSION=gzip|snappy|lz4 makes the Writer compress (one wrapper message per batch).
//
// Prints `kafka-go produced=N consumed=N topics_listed=yes` (with `compression=C ` before
// `produced` when set) and exits 0 when every message came back with its key, value and
// contiguous offsets; otherwise prints `FAIL: step: error`, exit 1.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strconv"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/gzip"
	"github.com/segmentio/kafka-go/lz4"
	"github.com/segmentio/kafka-go/snappy"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 4 {
		fail("usage: kafkago_client BOOTSTRAP TOPIC N [all|consume [TIMEOUT_SECONDS]]")
	}
	mode := "all"
	if len(os.Args) > 4 {
		mode = os.Args[4]
	}
	timeout := 20 * time.Second
	if len(os.Args) > 5 {
		seconds, err := strconv.Atoi(os.Args[5])
		if err != nil {
			fail("bad TIMEOUT_SECONDS: %v", err)
		}
		timeout = time.Duration(seconds) * time.Second
	}
	bootstrap, topic := os.Args[1], os.Args[2]
	n, err := strconv.Atoi(os.Args[3])
	if err != nil {
		fail("bad N: %v", err)
	}
	var logger *log.Logger
	if os.Getenv("COMPAT_DEBUG") != "" {
		logger = log.New(os.Stderr, "[kafka-go] ", log.Lmicroseconds)
	}
	errorLogger := log.New(os.Stderr, "[kafka-go error] ", log.Lmicroseconds)

	// Metadata v1 for the topic (auto-creates it). kafka-go 0.2.1's ReadPartitions() without a
	// topic sends Metadata v1 with an empty topic array, which means "no topics" from v1 on (only
	// null means all), so Kafka itself answers it with no topics: list by name instead.
	conn, err := kafka.Dial("tcp", bootstrap)
	if err != nil {
		fail("dial: %v", err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var parts []kafka.Partition
	for attempt := 0; attempt < 20; attempt++ {
		if parts, err = conn.ReadPartitions(topic); err == nil && len(parts) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	conn.Close()
	if err != nil {
		fail("metadata for %s: %v", topic, err)
	}
	listed := false
	for _, p := range parts {
		listed = listed || p.Topic == topic
	}
	if !listed {
		fail("metadata %v lacks %s", parts, topic)
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	produced := 0
	if mode != "consume" {
		produce(ctx, bootstrap, topic, n, logger, errorLogger)
		produced = n
	}

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{bootstrap},
		Topic:       topic,
		Partition:   0,
		MinBytes:    1,
		MaxBytes:    1 << 20,
		MaxWait:     200 * time.Millisecond,
		Logger:      logger,
		ErrorLogger: errorLogger,
	})
	defer r.Close()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		fail("set offset: %v", err)
	}
	for i := 0; i < n; i++ {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			fail("consume after %d of %d: %v", i, n, err)
		}
		if m.Offset != int64(i) || string(m.Key) != fmt.Sprintf("k%d", i) || string(m.Value) != fmt.Sprintf("v%d", i) {
			fail("record %d: offset %d key %q value %q", i, m.Offset, m.Key, m.Value)
		}
	}
	compression := ""
	if c := os.Getenv("COMPAT_COMPRESSION"); c != "" {
		compression = "compression=" + c + " "
	}
	fmt.Printf("kafka-go %sproduced=%d consumed=%d topics_listed=yes\n", compression, produced, n)
}

func produce(ctx context.Context, bootstrap, topic string, n int, logger, errorLogger *log.Logger) {
	var codec kafka.CompressionCodec
	switch c := os.Getenv("COMPAT_COMPRESSION"); c {
	case "":
	case "gzip":
		codec = gzip.NewCompressionCodec()
	case "snappy":
		codec = snappy.NewCompressionCodec()
	case "lz4":
		codec = lz4.NewCompressionCodec()
	default:
		fail("unknown COMPAT_COMPRESSION %q", c)
	}
	w := kafka.NewWriter(kafka.WriterConfig{
		Brokers:          []string{bootstrap},
		Topic:            topic,
		Balancer:         &kafka.Hash{},
		RequiredAcks:     -1,
		MaxAttempts:      3,
		BatchSize:        n,
		BatchTimeout:     10 * time.Millisecond,
		CompressionCodec: codec,
		ReadTimeout:      10 * time.Second,
		WriteTimeout:     10 * time.Second,
		Logger:           logger,
		ErrorLogger:      errorLogger,
	})
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		fail("produce: %v", err)
	}
	if err := w.Close(); err != nil {
		fail("writer close: %v", err)
	}
}
