// Shopify sarama (Debian's golang-github-shopify-sarama-dev) against a broker: produce N keyed
// messages with a SyncProducer (acks=all), read them back with Consumer.ConsumePartition from
// OffsetOldest (no group), list the topics.
//
// usage: sarama_client BOOTSTRAP TOPIC N [KAFKA_VERSION|default]
// Builds offline from Debian's packaged sources:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o sarama_client .
//
// COMPAT_COMPRESSION=gzip|snappy|lz4|zstd sets Producer.Compression (lz4 needs 0.10.0.0+, zstd
// 2.1.0+, as sarama checks).
//
// Prints `sarama version=V produced=N consumed=N topics_listed=yes` (with `compression=C `
// before `produced` when set) and exits 0 when every message came back with its key, value and
// contiguous offsets; otherwise exits 1.
package main

import (
	"fmt"
	"log"
	"os"
	"strconv"
	"time"

	"github.com/Shopify/sarama"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 4 {
		fail("usage: sarama_client BOOTSTRAP TOPIC N [KAFKA_VERSION|default]")
	}
	bootstrap, topic := os.Args[1], os.Args[2]
	n, err := strconv.Atoi(os.Args[3])
	if err != nil {
		fail("bad N: %v", err)
	}
	if os.Getenv("COMPAT_DEBUG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	}

	config := sarama.NewConfig()
	config.ClientID = "sarama-compat"
	if len(os.Args) > 4 && os.Args[4] != "default" {
		v, err := sarama.ParseKafkaVersion(os.Args[4])
		if err != nil {
			fail("bad version: %v", err)
		}
		config.Version = v
	}
	config.Net.DialTimeout = 5 * time.Second
	config.Net.ReadTimeout = 10 * time.Second
	config.Net.WriteTimeout = 10 * time.Second
	config.Metadata.Retry.Max = 3
	config.Metadata.Retry.Backoff = 100 * time.Millisecond
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Return.Successes = true
	config.Producer.Partitioner = sarama.NewHashPartitioner
	config.Consumer.MaxWaitTime = 200 * time.Millisecond
	compression := ""
	switch c := os.Getenv("COMPAT_COMPRESSION"); c {
	case "":
	case "gzip":
		config.Producer.Compression = sarama.CompressionGZIP
	case "snappy":
		config.Producer.Compression = sarama.CompressionSnappy
	case "lz4":
		config.Producer.Compression = sarama.CompressionLZ4
	case "zstd":
		config.Producer.Compression = sarama.CompressionZSTD
	default:
		fail("unknown COMPAT_COMPRESSION %q", c)
	}
	if c := os.Getenv("COMPAT_COMPRESSION"); c != "" {
		compression = "compression=" + c + " "
	}

	client, err := sarama.NewClient([]string{bootstrap}, config)
	if err != nil {
		fail("client (version %s): %v", config.Version, err)
	}
	defer client.Close()

	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		fail("producer: %v", err)
	}
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("k%d", i)),
			Value: sarama.StringEncoder(fmt.Sprintf("v%d", i)),
		}
	}
	if err := producer.SendMessages(msgs); err != nil {
		fail("produce (version %s): %v", config.Version, err)
	}
	for i, m := range msgs {
		if m.Partition != 0 || m.Offset != int64(i) {
			fail("message %d acknowledged at partition %d offset %d", i, m.Partition, m.Offset)
		}
	}
	if err := producer.Close(); err != nil {
		fail("producer close: %v", err)
	}

	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		fail("consumer: %v", err)
	}
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		fail("consume partition (version %s): %v", config.Version, err)
	}
	consumed := 0
	timeout := time.After(15 * time.Second)
	for consumed < n {
		select {
		case m := <-pc.Messages():
			wantKey, wantValue := fmt.Sprintf("k%d", consumed), fmt.Sprintf("v%d", consumed)
			if m.Offset != int64(consumed) || string(m.Key) != wantKey || string(m.Value) != wantValue {
				fail("record %d: offset %d key %q value %q", consumed, m.Offset, m.Key, m.Value)
			}
			consumed++
		case e := <-pc.Errors():
			fail("consume (version %s): %v", config.Version, e)
		case <-timeout:
			fail("consumed %d of %d before the timeout", consumed, n)
		}
	}
	pc.Close()
	consumer.Close()

	topics, err := client.Topics()
	if err != nil {
		fail("topics: %v", err)
	}
	listed := false
	for _, t := range topics {
		listed = listed || t == topic
	}
	if !listed {
		fail("topics %v lack %s", topics, topic)
	}
	fmt.Printf("sarama version=%s %sproduced=%d consumed=%d topics_listed=yes\n", config.Version, compression, n, consumed)
}
