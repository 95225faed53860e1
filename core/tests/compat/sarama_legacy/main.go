// Shopify sarama 1.22 (Debian's golang-github-shopify-sarama-dev) with the request versions it
// sends below Kafka 0.11 for offsets and configs:
//
//   - its OffsetManager at the default config.Version (0.8.2.0) and the default (zero)
//     Offsets.Retention: OffsetFetch v1 and OffsetCommit v1 with generation -1 and no member
//     (a commit outside any consumer group generation);
//   - the coordinator's OffsetCommit v0 and OffsetFetch v0, sent through sarama's Broker;
//   - ClusterAdmin.DescribeConfig, which in sarama 1.22 always sends DescribeConfigs v0 (it
//     never sets the request version). sarama refuses to send that request below
//     config.Version 0.11.0.0 (ClusterAdmin itself needs 0.10.0.0 for the controller), so the
//     admin client runs at 0.11.0.0, the lowest version DescribeConfig works at.
//
// usage: sarama_legacy BOOTSTRAP TOPIC GROUP
// Builds offline from Debian's packaged sources:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o sarama_legacy .
//
// Prints `sarama legacy offsets=ok describe_configs=N cleanup.policy=VALUE default=BOOL` and
// exits 0, or `FAIL: ...` and exits 1.
package main

import (
	"fmt"
	"log"
	"os"
	"time"

	"github.com/Shopify/sarama"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func newClient(bootstrap string) sarama.Client {
	config := sarama.NewConfig()
	config.ClientID = "sarama-legacy"
	config.Net.DialTimeout = 5 * time.Second
	config.Consumer.Return.Errors = true
	client, err := sarama.NewClient([]string{bootstrap}, config)
	if err != nil {
		fail("new client: %v", err)
	}
	return client
}

// commitWithOffsetManager marks OFFSET on TOPIC/0 for GROUP and closes the manager, which
// flushes the commit (OffsetCommit v1 at the default version and retention).
func commitWithOffsetManager(client sarama.Client, group, topic string, offset int64, metadata string) {
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		fail("offset manager: %v", err)
	}
	pom, err := om.ManagePartition(topic, 0)
	if err != nil {
		fail("manage partition: %v", err)
	}
	if next, _ := pom.NextOffset(); next != client.Config().Consumer.Offsets.Initial {
		fail("fresh group %s has offset %d", group, next)
	}
	pom.MarkOffset(offset, metadata)
	pom.AsyncClose()
	for err := range pom.Errors() {
		fail("partition offset manager: %v", err)
	}
	if err := om.Close(); err != nil {
		fail("close offset manager: %v", err)
	}
}

// fetchWithOffsetManager reads GROUP's committed offset of TOPIC/0 (OffsetFetch v1).
func fetchWithOffsetManager(client sarama.Client, group, topic string) (int64, string) {
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		fail("offset manager: %v", err)
	}
	defer om.Close()
	pom, err := om.ManagePartition(topic, 0)
	if err != nil {
		fail("manage partition: %v", err)
	}
	defer pom.AsyncClose()
	return pom.NextOffset()
}

func main() {
	if len(os.Args) < 4 {
		fail("usage: sarama_legacy BOOTSTRAP TOPIC GROUP")
	}
	bootstrap, topic, group := os.Args[1], os.Args[2], os.Args[3]
	if os.Getenv("COMPAT_DEBUG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	}

	// The default config.Version (0.8.2.0). The first Metadata request auto-creates the topic.
	client := newClient(bootstrap)
	defer client.Close()
	if v := client.Config().Version; v != sarama.V0_8_2_0 {
		fail("default version is %s", v)
	}
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if _, err = client.Partitions(topic); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
		_ = client.RefreshMetadata(topic)
	}
	if err != nil {
		fail("partitions of %s: %v", topic, err)
	}

	// OffsetManager: OffsetCommit v1, OffsetFetch v1.
	commitWithOffsetManager(client, group, topic, 42, "meta-v1")
	if offset, metadata := fetchWithOffsetManager(client, group, topic); offset != 42 || metadata != "meta-v1" {
		fail("offset manager read back %d %q, want 42 \"meta-v1\"", offset, metadata)
	}

	// OffsetCommit v0 and OffsetFetch v0 through the coordinator.
	group0 := group + "-v0"
	coordinator, err := client.Coordinator(group0)
	if err != nil {
		fail("coordinator: %v", err)
	}
	commit := &sarama.OffsetCommitRequest{Version: 0, ConsumerGroup: group0}
	commit.AddBlock(topic, 0, 7, 0, "meta-v0")
	committed, err := coordinator.CommitOffset(commit)
	if err != nil {
		fail("commit v0: %v", err)
	}
	if kerr := committed.Errors[topic][0]; kerr != sarama.ErrNoError {
		fail("commit v0: %v", kerr)
	}
	for _, g := range []struct {
		group    string
		offset   int64
		metadata string
	}{{group0, 7, "meta-v0"}, {group, 42, "meta-v1"}} {
		coordinator, err := client.Coordinator(g.group)
		if err != nil {
			fail("coordinator: %v", err)
		}
		fetch := &sarama.OffsetFetchRequest{Version: 0, ConsumerGroup: g.group}
		fetch.AddPartition(topic, 0)
		fetched, err := coordinator.FetchOffset(fetch)
		if err != nil {
			fail("fetch v0: %v", err)
		}
		block := fetched.GetBlock(topic, 0)
		if block == nil || block.Err != sarama.ErrNoError || block.Offset != g.offset || block.Metadata != g.metadata {
			fail("fetch v0 of %s: %+v, want %d %q", g.group, block, g.offset, g.metadata)
		}
	}

	// ClusterAdmin.DescribeConfig: DescribeConfigs v0, at 0.11.0.0.
	adminConfig := sarama.NewConfig()
	adminConfig.ClientID = "sarama-legacy-admin"
	adminConfig.Version = sarama.V0_11_0_0
	adminConfig.Net.DialTimeout = 5 * time.Second
	admin, err := sarama.NewClusterAdmin([]string{bootstrap}, adminConfig)
	if err != nil {
		fail("cluster admin: %v", err)
	}
	defer admin.Close()
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		fail("describe config: %v", err)
	}
	cleanup, isDefault := "", false
	for _, e := range entries {
		if e.Name == "cleanup.policy" {
			cleanup, isDefault = e.Value, e.Default
		}
	}
	named, err := admin.DescribeConfig(sarama.ConfigResource{
		Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"retention.ms"},
	})
	if err != nil {
		fail("describe config retention.ms: %v", err)
	}
	if len(named) != 1 || named[0].Name != "retention.ms" {
		fail("describe config retention.ms: %+v", named)
	}
	fmt.Printf("sarama legacy offsets=ok describe_configs=%d cleanup.policy=%s default=%t\n",
		len(entries), cleanup, isDefault)
}
