// Command franzpeer is franz-go (kgo) driven by the Rust tests, the Go twin
// of interop/java/src/JavaPeer.java: each command prints what it did, one
// fact per line, for the test to check; failures go to stderr with a
// non-zero exit.
//
//	produce BOOTSTRAP TOPIC COUNT          idempotent, acks=all; keys k0..k6
//	consume BOOTSTRAP TOPIC GROUP COUNT    group member (range); commits; prints key=value
//	copy BOOTSTRAP IN OUT GROUP TXN_ID COUNT ABORT_EVERY
//	                                       consume-process-produce in transactions
//	                                       (GroupTransactSession); every ABORT_EVERY-th
//	                                       transaction is aborted and its input re-read
//	read-committed BOOTSTRAP TOPIC COUNT   read_committed, every partition
//
// FRANZPEER_LOG=debug|info|warn|error sets kgo's log level (to stderr; warn
// by default).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	poll  = 200 * time.Millisecond
	limit = 60 * time.Second
	// Java's max.poll.records in its copy: small transactions, so that
	// there are many and some are aborted.
	maxPollRecords = 20
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: franzpeer produce|consume|copy|read-committed ..."))
	}
	// Loops stop at `limit` like Java's; this catches a client that hangs
	// past it (in a close, say) so the test never waits on us forever.
	time.AfterFunc(limit+30*time.Second, func() { fail(errors.New("still running after 90 s")) })
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()

	args := os.Args[2:]
	var err error
	switch cmd := os.Args[1]; cmd {
	case "produce":
		need(args, 3)
		err = produce(ctx, args[0], args[1], number(args[2]))
	case "consume":
		need(args, 4)
		err = consume(ctx, args[0], args[1], args[2], number(args[3]))
	case "copy":
		need(args, 7)
		err = copyTxn(ctx, args[0], args[1], args[2], args[3], args[4], number(args[5]), number(args[6]))
	case "read-committed":
		need(args, 3)
		err = readCommitted(ctx, args[0], args[1], number(args[2]))
	default:
		err = fmt.Errorf("unknown command %s", cmd)
	}
	if err != nil {
		fail(err)
	}
}

func common(bootstrap string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(strings.Split(bootstrap, ",")...),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, logLevel(), nil)),
	}
}

// Java's consumerProps: earliest, and in a group no auto-commit (kgo
// refuses the option without a group).
func consumerOpts(bootstrap, group string) []kgo.Opt {
	opts := append(common(bootstrap), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if group != "" {
		opts = append(opts, kgo.ConsumerGroup(group), kgo.DisableAutoCommit())
	}
	return opts
}

func produce(ctx context.Context, bootstrap, topic string, count int) error {
	// Idempotence is kgo's default; acks=all is what it requires.
	cl, err := kgo.NewClient(append(common(bootstrap), kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	records := make([]*kgo.Record, count)
	for i := range records {
		records[i] = &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%7), Value: []byte(strconv.Itoa(i))}
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	fmt.Printf("produced %d\n", count)
	return nil
}

func consume(ctx context.Context, bootstrap, topic, group string, count int) error {
	// Blocking rebalances between a poll and its commit keeps the commit
	// from naming partitions this member no longer owns.
	cl, err := kgo.NewClient(append(consumerOpts(bootstrap, group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.BlockRebalanceOnPoll(),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	seen := 0
	for seen < count && ctx.Err() == nil {
		fetches, err := pollOnce(ctx, cl, 0)
		if err != nil {
			return err
		}
		fetches.EachRecord(func(r *kgo.Record) {
			printRecord(r)
			seen++
		})
		err = cl.CommitUncommittedOffsets(ctx)
		cl.AllowRebalance()
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	fmt.Printf("consumed %d\n", seen)
	return nil
}

func copyTxn(ctx context.Context, bootstrap, in, out, group, txnID string, count, abortEvery int) error {
	// The session sends the polled offsets in the transaction (Java's
	// sendOffsetsToTransaction) on commit; on abort it sends none and
	// rewinds the consumer to the group's committed offsets.
	s, err := kgo.NewGroupTransactSession(append(consumerOpts(bootstrap, group),
		kgo.TransactionalID(txnID),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ConsumeTopics(in),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)...)
	if err != nil {
		return err
	}
	defer s.Close()
	committed, transactions, aborted := 0, 0, 0
	for committed < count && ctx.Err() == nil {
		fetches, err := pollOnce(ctx, s, maxPollRecords)
		if err != nil {
			return err
		}
		records := fetches.Records()
		if len(records) == 0 {
			continue
		}
		if err := s.Begin(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		var produceErr error
		for _, r := range records {
			copied := &kgo.Record{Topic: out, Key: r.Key, Value: append([]byte("copied-"), r.Value...)}
			s.Produce(ctx, copied, func(_ *kgo.Record, err error) {
				if err != nil && produceErr == nil {
					produceErr = err
				}
			})
		}
		transactions++
		abort := abortEvery > 0 && transactions%abortEvery == 0
		if abort {
			// Written before the abort, so that the log holds aborted
			// records for read_committed readers to skip.
			if err := s.Client().Flush(ctx); err != nil {
				return fmt.Errorf("flush: %w", err)
			}
		}
		ok, err := s.End(ctx, kgo.TransactionEndTry(!abort))
		if err != nil {
			return fmt.Errorf("end transaction: %w", err)
		}
		if produceErr != nil && !abort {
			return fmt.Errorf("produce in transaction: %w", produceErr)
		}
		if ok {
			committed += len(records)
		} else {
			// Ours, or the session's after a rebalance: input re-read.
			aborted++
		}
	}
	fmt.Printf("copied %d in %d transactions, %d aborted\n", committed, transactions, aborted)
	return nil
}

func readCommitted(ctx context.Context, bootstrap, topic string, count int) error {
	// Without a group, ConsumeTopics reads every partition of the topic.
	cl, err := kgo.NewClient(append(consumerOpts(bootstrap, ""),
		kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	seen := 0
	var quietUntil time.Time
	for ctx.Err() == nil && (quietUntil.IsZero() || time.Now().Before(quietUntil)) {
		fetches, err := pollOnce(ctx, cl, 0)
		if err != nil {
			return err
		}
		fetches.EachRecord(func(r *kgo.Record) {
			printRecord(r)
			seen++
		})
		// Past the expected count, wait a little for anything extra.
		if seen >= count && quietUntil.IsZero() {
			quietUntil = time.Now().Add(time.Second)
		}
	}
	fmt.Printf("read %d\n", seen)
	return nil
}

type poller interface {
	PollRecords(context.Context, int) kgo.Fetches
}

// pollOnce waits at most `poll` for records (Java's poll(200 ms)); the
// timeout itself is not an error.
func pollOnce(ctx context.Context, p poller, max int) (kgo.Fetches, error) {
	pctx, cancel := context.WithTimeout(ctx, poll)
	defer cancel()
	fetches := p.PollRecords(pctx, max)
	for _, fe := range fetches.Errors() {
		if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
			continue
		}
		return nil, fmt.Errorf("fetch %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
	}
	return fetches, nil
}

func printRecord(r *kgo.Record) {
	fmt.Printf("record %d %d %s=%s\n", r.Partition, r.Offset, r.Key, r.Value)
}

func logLevel() kgo.LogLevel {
	switch strings.ToLower(os.Getenv("FRANZPEER_LOG")) {
	case "debug":
		return kgo.LogLevelDebug
	case "info":
		return kgo.LogLevelInfo
	case "error":
		return kgo.LogLevelError
	case "none":
		return kgo.LogLevelNone
	}
	return kgo.LogLevelWarn
}

func need(args []string, n int) {
	if len(args) != n {
		fail(fmt.Errorf("%s takes %d arguments, got %d", os.Args[1], n, len(args)))
	}
}

func number(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail(fmt.Errorf("not a number: %q", s))
	}
	return n
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "franzpeer: %v\n", err)
	os.Exit(1)
}
