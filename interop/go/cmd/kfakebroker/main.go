// Command kfakebroker serves franz-go's in-memory fake Kafka (pkg/kfake) on
// 127.0.0.1 until its standard input closes.
//
//	kfakebroker [--brokers N] [--topic NAME:PARTITIONS]... [--log-level warn]
//
// It prints one line, the bootstrap servers, once the brokers listen: the
// same contract as interop/librdkafka-mock/mock_cluster.py, so that tests
// start it as a child process and stop it by dropping its stdin.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"
)

type topicFlags []string

func (t *topicFlags) String() string     { return strings.Join(*t, ",") }
func (t *topicFlags) Set(s string) error { *t = append(*t, s); return nil }

func main() {
	brokers := flag.Int("brokers", 3, "number of brokers")
	logLevel := flag.String("log-level", "none", "none, error, warn, info or debug (to stderr)")
	var topics topicFlags
	flag.Var(&topics, "topic", "NAME:PARTITIONS to create at start (repeatable)")
	flag.Parse()

	opts := []kfake.Opt{kfake.NumBrokers(*brokers), kfake.WithLogger(kfake.BasicLogger(os.Stderr, level(*logLevel)))}
	for _, spec := range topics {
		name, parts, _ := strings.Cut(spec, ":")
		n := 1
		if parts != "" {
			var err error
			if n, err = strconv.Atoi(parts); err != nil || n < 1 {
				fail("bad --topic %q", spec)
			}
		}
		opts = append(opts, kfake.SeedTopics(int32(n), name))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		fail("kfake: %v", err)
	}
	defer cluster.Close()

	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, strings.Join(cluster.ListenAddrs(), ","))
	if err := out.Flush(); err != nil {
		fail("stdout: %v", err)
	}
	// The parent closing (or dying with) our stdin is the stop signal.
	_, _ = io.Copy(io.Discard, os.Stdin)
}

func level(s string) kfake.LogLevel {
	switch strings.ToLower(s) {
	case "error":
		return kfake.LogLevelError
	case "warn":
		return kfake.LogLevelWarn
	case "info":
		return kfake.LogLevelInfo
	case "debug":
		return kfake.LogLevelDebug
	}
	return kfake.LogLevelNone
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kfakebroker: "+format+"\n", args...)
	os.Exit(1)
}
