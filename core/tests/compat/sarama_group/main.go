// Shopify sarama 1.22 (Debian's golang-github-shopify-sarama-dev) as a consumer-group member:
// joins GROUP on TOPIC with sarama's ConsumerGroup, marks every record it reads, stops after
// WANT records or IDLE_MS without one, lets the offset manager commit, and closes.
//
// usage: sarama_group BOOTSTRAP TOPIC GROUP WANT IDLE_MS
// Builds offline from Debian's packaged sources:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o sarama_group .
//
// sarama commits with OffsetCommit v1 unless Consumer.Offsets.Retention is set (then v2);
// the retention is set here, so this program commits with v2 (v1, at sarama's default
// retention, is tested by sarama_legacy).
//
// Prints `sarama group consumed=N` and exits 0, or `FAIL: ...` and exits 1.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

type handler struct {
	mu       *sync.Mutex
	consumed *int
	last     *time.Time
	want     int
	done     chan struct{}
	once     *sync.Once
}

func (h handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		h.mu.Lock()
		if *h.consumed < h.want {
			*h.consumed++
			*h.last = time.Now()
			sess.MarkMessage(msg, "")
		}
		n := *h.consumed
		h.mu.Unlock()
		if n >= h.want {
			h.once.Do(func() { close(h.done) })
		}
	}
	return nil
}

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 6 {
		fail("usage: sarama_group BOOTSTRAP TOPIC GROUP WANT IDLE_MS")
	}
	bootstrap, topic, groupID := os.Args[1], os.Args[2], os.Args[3]
	want, err := strconv.Atoi(os.Args[4])
	if err != nil {
		fail("bad WANT: %v", err)
	}
	idleMs, err := strconv.Atoi(os.Args[5])
	if err != nil {
		fail("bad IDLE_MS: %v", err)
	}
	if os.Getenv("COMPAT_DEBUG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	}
	config := sarama.NewConfig()
	config.ClientID = "sarama-group"
	config.Version = sarama.V1_0_0_0
	config.Net.DialTimeout = 5 * time.Second
	config.Consumer.MaxWaitTime = 200 * time.Millisecond
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	config.Consumer.Offsets.Retention = 24 * time.Hour
	config.Consumer.Group.Session.Timeout = 6 * time.Second
	config.Consumer.Group.Heartbeat.Interval = 1 * time.Second
	config.Consumer.Return.Errors = true

	group, err := sarama.NewConsumerGroup([]string{bootstrap}, groupID, config)
	if err != nil {
		fail("new consumer group: %v", err)
	}
	go func() {
		for err := range group.Errors() {
			fmt.Fprintf(os.Stderr, "consumer group error: %v\n", err)
		}
	}()
	var mu sync.Mutex
	consumed := 0
	last := time.Now()
	h := handler{mu: &mu, consumed: &consumed, last: &last, want: want, done: make(chan struct{}), once: &sync.Once{}}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{topic}, h); err != nil {
				fmt.Fprintf(os.Stderr, "consume: %v\n", err)
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	ticker := time.NewTicker(50 * time.Millisecond)
wait:
	for {
		select {
		case <-h.done:
			break wait
		case <-ticker.C:
			mu.Lock()
			idle := time.Since(last)
			mu.Unlock()
			if idle > time.Duration(idleMs)*time.Millisecond {
				break wait
			}
		}
	}
	// Let the offset manager's next tick commit what was marked.
	time.Sleep(500 * time.Millisecond)
	cancel()
	<-stopped
	if err := group.Close(); err != nil {
		fail("close: %v", err)
	}
	mu.Lock()
	fmt.Printf("sarama group consumed=%d\n", consumed)
	mu.Unlock()
}
