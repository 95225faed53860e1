// segmentio/kafka-go 0.2.1 (Debian's golang-github-segmentio-kafka-go-dev) as a consumer-group
// member: a Reader with GroupID on TOPIC, which speaks FindCoordinator v0, JoinGroup v1,
// SyncGroup v0, Heartbeat v0, OffsetFetch v1, OffsetCommit v2 and LeaveGroup v0, with the
// range balancer run by the client. It commits every message it reads (CommitMessages,
// synchronous), stops after WANT messages or IDLE_MS without one, and closes (LeaveGroup).
//
// usage: kafkago_group BOOTSTRAP TOPIC GROUP WANT IDLE_MS
// Builds offline from Debian's packaged sources:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o kafkago_group .
//
// Prints `kafka-go group consumed=N values=v1,v2,...` (values sorted) and exits 0, or
// `FAIL: ...` and exits 1.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	kafka "github.com/segmentio/kafka-go"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 6 {
		fail("usage: kafkago_group BOOTSTRAP TOPIC GROUP WANT IDLE_MS")
	}
	bootstrap, topic, group := os.Args[1], os.Args[2], os.Args[3]
	want, err := strconv.Atoi(os.Args[4])
	if err != nil {
		fail("bad WANT: %v", err)
	}
	idleMs, err := strconv.Atoi(os.Args[5])
	if err != nil {
		fail("bad IDLE_MS: %v", err)
	}
	config := kafka.ReaderConfig{
		Brokers:           []string{bootstrap},
		GroupID:           group,
		Topic:             topic,
		MinBytes:          1,
		MaxBytes:          1 << 20,
		MaxWait:           200 * time.Millisecond,
		HeartbeatInterval: 500 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
		RebalanceTimeout:  10 * time.Second,
	}
	if os.Getenv("COMPAT_DEBUG") != "" {
		config.Logger = log.New(os.Stderr, "[kafka-go] ", log.Lmicroseconds)
		config.ErrorLogger = log.New(os.Stderr, "[kafka-go error] ", log.Lmicroseconds)
	}
	reader := kafka.NewReader(config)
	var values []string
	for len(values) < want {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(idleMs)*time.Millisecond)
		m, err := reader.FetchMessage(ctx)
		cancel()
		if err == context.DeadlineExceeded {
			break
		}
		if err != nil {
			fail("fetch: %v", err)
		}
		values = append(values, string(m.Value))
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		err = reader.CommitMessages(ctx, m)
		cancel()
		if err != nil {
			fail("commit: %v", err)
		}
	}
	if err := reader.Close(); err != nil {
		fail("close: %v", err)
	}
	sort.Strings(values)
	fmt.Printf("kafka-go group consumed=%d values=%s\n", len(values), strings.Join(values, ","))
}
